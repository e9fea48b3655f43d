using LibGit2Sharp;
using LibGit2Sharp.Handlers;

namespace Pipeline.Engine.Vcs;

/// <summary>User and password for a git server, read from a file of one line <c>user:password</c>.</summary>
public sealed class GitCredentials
{
    private readonly string _user;
    private readonly string _password;

    private GitCredentials(string user, string password)
    {
        _user = user;
        _password = password;
    }

    public string User => _user;

    /// <summary>For handing to git (never logged, never on a command line).</summary>
    internal string Password => _password;

    public static GitCredentials? FromFile(string? path)
    {
        if (path is null) return null;
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (IOException e)
        {
            throw new PipelineException("VCS-CREDENTIALS", $"cannot read the credentials file '{path}': {e.Message}");
        }

        var i = text.IndexOf(':');
        if (i <= 0 || i == text.Length - 1 || text.Contains('\n'))
            throw new PipelineException("VCS-CREDENTIALS", $"the credentials file '{path}' must hold one line 'user:password'");
        return new GitCredentials(text[..i], text[(i + 1)..]);
    }

    internal CredentialsHandler Handler => (_, _, _) => new UsernamePasswordCredentials { Username = _user, Password = _password };

    public override string ToString() => $"{_user}:***";
}
