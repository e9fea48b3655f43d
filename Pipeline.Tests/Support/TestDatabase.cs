using Npgsql;

namespace Pipeline.Tests.Support;

/// <summary>A fresh PostgreSQL database on the real server, dropped on dispose.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly string _adminConnectionString;

    private TestDatabase(string admin, string name, string connectionString)
    {
        _adminConnectionString = admin;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }
    public string ConnectionString { get; }

    public static async Task<TestDatabase> CreateAsync()
    {
        var admin = TestServices.Require("PIPELINE_PG_CONN");
        var name = "pipeline_test_" + Guid.NewGuid().ToString("N")[..12];
        await using (var conn = new NpgsqlConnection(admin))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"create database {name}", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        var b = new NpgsqlConnectionStringBuilder(admin) { Database = name };
        return new TestDatabase(admin, name, b.ConnectionString);
    }

    public NpgsqlDataSource DataSource() => NpgsqlDataSource.Create(ConnectionString);

    private readonly List<string> _roles = [];

    /// <summary>A fresh login role (e.g. the engine's restricted role), dropped with the database.</summary>
    public async Task<string> CreateLoginRoleAsync()
    {
        var role = "pl_engine_" + Guid.NewGuid().ToString("N")[..8];
        await using var conn = new NpgsqlConnection(_adminConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"create role {role} login", conn);
        await cmd.ExecuteNonQueryAsync();
        _roles.Add(role);
        return role;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var conn = new NpgsqlConnection(_adminConnectionString);
        await conn.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"drop database if exists {Name} with (force)", conn))
            await cmd.ExecuteNonQueryAsync();
        foreach (var role in _roles)
        {
            await using var drop = new NpgsqlCommand($"drop role if exists {role}", conn);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
