using Pipeline.Engine.Approvals;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Runs;

namespace Pipeline.Engine.Lifecycle;

// Placeholder bodies while the implementation is written (API committed first for the portal).
public sealed partial class LifecycleService
{
    public partial Task<Board> GetBoardAsync(Actor actor, string? pipeline, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<DeliveryLifecycle> GetAsync(Actor actor, Guid deliveryId, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<IReadOnlyList<HistoryEvent>> GetHistoryAsync(Actor actor, Guid deliveryId, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<IReadOnlyList<PendingApproval>> PendingApprovalsAsync(Actor actor, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<IReadOnlyList<ApprovalRecord>> GetApprovalsAsync(Actor actor, Guid deliveryId, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<PromotionRequest> RequestPromotionAsync(Actor actor, Guid deliveryId, string toStage, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<ApprovalOutcome> ApproveAsync(Actor actor, ApprovalInput input, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<ApprovalOutcome> RejectAsync(Actor actor, ApprovalInput input, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<DeliveryLifecycle> WithdrawAsync(Actor actor, Guid deliveryId, string reason, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<ApprovalStatement> ApprovalStatementAsync(Actor actor, ApprovalInput input, ApprovalDecision decision, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<DeliveryLifecycle?> OnAcceptedAsync(PipelineDefinition definition, DeliveryReport report, CancellationToken ct) => throw new NotImplementedException();
    public partial Task<IReadOnlyList<DeliveryLifecycle>> ResumeAsync(string? pipeline, CancellationToken ct) => throw new NotImplementedException();
}

/// <summary>The lifecycle tables in PostgreSQL.</summary>
public sealed class LifecycleStore(Npgsql.NpgsqlDataSource dataSource)
{
    internal Npgsql.NpgsqlDataSource DataSource => dataSource;
}

/// <summary>Copies a delivery's images into a stage and moves the stage tag.</summary>
public sealed class PromotionStep(Configuration.EngineSettings settings)
{
    internal Configuration.EngineSettings Settings => settings;
}
