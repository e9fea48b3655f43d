using System.Text;

namespace Pipeline.Tests.Support;

/// <summary>
/// The EICAR anti-virus test string, assembled at run time so that this repository never holds it
/// in one piece (scanners on other machines would flag the source tree).
/// </summary>
public static class Eicar
{
    private const string FirstHalf = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR";
    private const string SecondHalf = "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    public static string Text() => FirstHalf + SecondHalf;

    public static byte[] Bytes() => Encoding.ASCII.GetBytes(Text());
}
