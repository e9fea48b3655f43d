namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// Stable codes of every refusal of the lifecycle service. Messages name the cause and what to do;
/// tests assert code and cause. <see cref="LifecycleException.IsTransient"/> marks outages of our
/// own infrastructure (a registry during a copy), which are retried, never held against the delivery.
/// </summary>
public static class LifecycleErrors
{
    public const string NotAuthenticated = "LC-NOT-AUTHENTICATED";
    public const string UnknownDelivery = "LC-UNKNOWN-DELIVERY";
    public const string UnknownStage = "LC-UNKNOWN-STAGE";
    public const string UnknownPerson = "LC-UNKNOWN-PERSON";
    public const string PipelineNotAllowed = "LC-PIPELINE-NOT-ALLOWED";
    public const string WrongRole = "LC-WRONG-ROLE";
    public const string OwnRequest = "LC-OWN-REQUEST";
    public const string OnBehalfNotAllowed = "LC-ON-BEHALF-NOT-ALLOWED";
    public const string DigestMismatch = "LC-DIGEST-MISMATCH";
    public const string Withdrawn = "LC-DELIVERY-WITHDRAWN";
    public const string Superseded = "LC-DELIVERY-SUPERSEDED";
    public const string Closed = "LC-DELIVERY-CLOSED";
    public const string NotAccepted = "LC-NOT-ACCEPTED";
    public const string StageSkipped = "LC-STAGE-SKIPPED";
    public const string NotAwaiting = "LC-NOT-AWAITING";
    public const string RequestOpen = "LC-REQUEST-OPEN";
    public const string AlreadyDecided = "LC-ALREADY-APPROVED";
    public const string SignatureRequired = "LC-SIGNATURE-REQUIRED";
    public const string SignatureInvalid = "LC-SIGNATURE-INVALID";
    public const string NoPersonalKey = "LC-NO-PERSONAL-KEY";
    public const string StatementMismatch = "LC-STATEMENT-MISMATCH";
    public const string Expired = "LC-APPROVAL-EXPIRED";
    public const string CommentRequired = "LC-COMMENT-REQUIRED";
    public const string ChainBroken = "LC-CHAIN-BROKEN";
    public const string RegistryFailed = "LC-PROMOTE-REGISTRY";
    public const string CopyUnverified = "LC-PROMOTE-UNVERIFIED";
    public const string WithdrawRegistry = "LC-WITHDRAW-REGISTRY";
    public const string Busy = "LC-BUSY";
    public const string Concurrent = "LC-CONCURRENT-CHANGE";
    public const string AutomaticNotFirst = "LC-AUTOMATIC-NOT-FIRST";
    public const string Internal = "LC-INTERNAL";
}

/// <summary>A refusal or failure of a lifecycle action, with its stable code.</summary>
public sealed class LifecycleException(string code, string message, bool isTransient = false, Exception? inner = null)
    : PipelineException(code, message, inner)
{
    /// <summary>An outage of our infrastructure (registry, database): retry; the delivery is not at fault.</summary>
    public bool IsTransient { get; } = isTransient;
}
