using Pipeline.Checkup;
using Pipeline.Checkup.Manifests;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Engine.Deploy.GitOps;
using Pipeline.Engine.Deploy.Verification;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Vcs;
using Serilog;

namespace Pipeline.Engine.Deploy;

/// <summary>One recorded step of a stage deployment (check, deploy or verification): passed or failed with a code, and its evidence.</summary>
public sealed record DeployStepResult(string Step, bool Passed, string? Code, string? Reason, IReadOnlyDictionary<string, string> Evidence);

/// <summary>
/// What deploying a delivery into a stage did: the steps to record in order (manifest check,
/// deployment, and for a Docker stage the verification by acceptance tests), and whether the
/// stage still waits for its verification (a GitOps stage: the HTTP probe runs next).
/// </summary>
public sealed record DeployOutcome(IReadOnlyList<DeployStepResult> Steps, bool AwaitsVerification)
{
    public bool Failed => Steps.Any(s => !s.Passed);
}

/// <summary>
/// Deploys a promoted delivery into a stage's environment and verifies it: reads the delivery
/// from VCS B at its checked tag object, checks its manifests against the operator's rules, then
/// either commits the rendered, digest-pinned manifests to the stage's GitOps repository (signed)
/// or runs the acceptance tests in the stage's Docker engine; a GitOps stage is verified by its
/// HTTP probe, and a failed probe reverts the environment by a new signed commit. Returns the
/// evidence; the lifecycle records it as signed statements and moves the stage's result.
/// Outages of VCS B or a Docker engine throw a transient <see cref="DeployException"/> (retried).
/// </summary>
public sealed class StageDeployment(EngineSettings settings, IReadOnlyList<PipelineDefinition> pipelines, TimeProvider time, ILogger log, HttpProber? prober = null)
{
    private readonly ILogger _log = log.ForContext<StageDeployment>();
    private readonly HttpProber _prober = prober ?? new HttpProber(time);

    /// <summary>Checks the manifests and deploys (GitOps commit, or Docker run with acceptance tests).</summary>
    /// <param name="tagObjectId">The tag object the intake checked (VCS B must still hold exactly it).</param>
    /// <exception cref="DeployException">transient outages (VCS B, Docker engine); everything else is a failed step.</exception>
    public async Task<DeployOutcome> DeployAsync(DeliveryLifecycle d, string tagObjectId, StageDefinition stage, CancellationToken ct)
    {
        var env = stage.Environment ?? throw new DeployException(DeployErrors.Internal, $"stage {stage.Name} has no environment");
        var definition = pipelines.FirstOrDefault(p => p.Name == d.Pipeline)
                         ?? throw new DeployException(DeployErrors.Internal, $"pipeline '{d.Pipeline}' is not configured any more");
        var placement = Place(definition, stage, env);
        if (placement is { Passed: false }) return new DeployOutcome([placement], false);
        using var tree = DeliveryTree.Export(settings, definition, d.Tag, tagObjectId, ct);
        var steps = new List<DeployStepResult>();

        DeliveryManifest manifest;
        try
        {
            manifest = DeliveryManifestParser.Load(tree.Root, definition.Images.AllowedBaseImages, definition.Images.AllowRoot);
        }
        catch (PipelineException e)
        {
            steps.Add(Fail("check", DeployErrors.ManifestRejected, $"delivery.yaml in VCS B does not parse: {e.Message}", new() { ["deliveryCommit"] = tree.Commit }));
            return new DeployOutcome(steps, false);
        }

        var spec = manifest.Deployment;
        if (spec is null)
        {
            steps.Add(Fail("check", DeployErrors.NoDeployment,
                $"stage {stage.Name} deploys ({env.Kind}), but {d.Tag}'s delivery.yaml has no 'deployment:' section; the supplier must describe the deployment", new() { ["deliveryCommit"] = tree.Commit }));
            return new DeployOutcome(steps, false);
        }

        var names = manifest.Images.Select(i => i.Name).ToList();
        var pinned = Pinned(d, names);
        var check = Check(spec, tree, names, env);
        if (placement is not null) check = check with { Evidence = check.Evidence.Concat(placement.Evidence).ToDictionary(StringComparer.Ordinal) };
        steps.Add(check);
        if (!check.Passed) return new DeployOutcome(steps, false);

        return env switch
        {
            GitOpsEnvironment g => await DeployGitOpsAsync(d, stage, g, spec, tree, pinned, steps, ct).ConfigureAwait(false),
            DockerEnvironment k => await RunDockerAsync(d, stage, k, spec, manifest, tree, pinned, steps, ct).ConfigureAwait(false),
            _ => throw new DeployException(DeployErrors.Internal, $"unknown environment kind {env.Kind}"),
        };
    }

    /// <summary>
    /// Verifies a GitOps deployment with the stage's HTTP probe; when it fails, reverts the environment
    /// to <paramref name="previousCommit"/>'s state by a new signed commit. Without a probe the stage
    /// counts as verified once the commit is pushed (the statement says so).
    /// </summary>
    public async Task<DeployStepResult> VerifyAsync(DeliveryLifecycle d, StageDefinition stage, string deployedCommit, string? previousCommit, CancellationToken ct)
    {
        if (stage.Environment is not GitOpsEnvironment env)
            throw new DeployException(DeployErrors.Internal, $"stage {stage.Name} has no GitOps environment to verify");
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal) { ["environment.commit"] = deployedCommit };
        if (env.Probe is not { } probe)
        {
            evidence["probe"] = "none (the stage configures no probe; verified by the pushed commit)";
            evidence["detail"] = $"{stage.Name}: commit {deployedCommit[..12]} is on {env.Branch}; no probe configured";
            return new DeployStepResult("verification", true, null, null, evidence);
        }

        var result = await _prober.ProbeAsync(probe, d.Tag, ct).ConfigureAwait(false);
        evidence["probe.url"] = probe.Url.ToString();
        evidence["probe.expectStatus"] = probe.ExpectStatus.ToString(System.Globalization.CultureInfo.InvariantCulture);
        evidence["probe.expectVersion"] = probe.VersionFor(d.Tag);
        evidence["probe.attempts"] = result.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture);
        evidence["probe.lastStatus"] = result.LastStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "";
        evidence["probe.bodyDigest"] = result.BodyDigest ?? "";
        evidence["probe.seconds"] = result.Elapsed.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
        if (result.Passed)
        {
            evidence["detail"] = $"{stage.Name} verified: {result.Detail}";
            return new DeployStepResult("verification", true, null, null, evidence);
        }

        _log.Warning("Verification of {DeliveryId} in {Stage} failed: {Detail}; reverting the environment", d.DeliveryId, stage.Name, result.Detail);
        var reason = result.Detail;
        using (var repo = OpenRepository(env))
        {
            var revert = repo.Revert(deployedCommit, previousCommit, d.DeliveryId, stage.Name,
                $"Revert {d.Pipeline} {d.Tag} in {stage.Name}: verification failed\n\n{result.Detail}", ct);
            if (revert is null)
            {
                evidence["environment.revert"] = "not reverted: the environment moved on to another state since";
                reason += "; the environment was not reverted because it holds another deployment since";
            }
            else
            {
                evidence["environment.revert"] = revert.Commit;
                evidence["environment.revertChanged"] = revert.Changed ? "true" : "false";
                reason += $"; the environment was reverted to its previous state (commit {revert.Commit[..12]})";
            }
        }

        evidence["detail"] = reason;
        return new DeployStepResult("verification", false, DeployErrors.ProbeFailed, reason, evidence);
    }

    /// <summary>
    /// The tenancy placement rules (<see cref="Tenancy.PlacementRules"/>) before anything is read or
    /// deployed: null without tenants, else a check step refused with the rule's code, or passed
    /// with the rule that allowed it (its evidence goes into the check statement).
    /// </summary>
    /// <summary>
    /// The placement refusal of <paramref name="definition"/> into <paramref name="stage"/>, or null
    /// when it is allowed, the stage has no environment, or no tenants are configured. The lifecycle
    /// asks this before a promotion is requested, so a refused application never reaches the
    /// stage's registry either.
    /// </summary>
    public Tenancy.PlacementDecision? PlacementRefusal(PipelineDefinition definition, StageDefinition stage)
    {
        if (!settings.Tenants.Configured || stage.Environment is not { } env) return null;
        var decision = Tenancy.PlacementRules.Decide(settings.Tenants.TenantOf(definition.Name)?.Id, definition.Schutzbedarf, env.Hosts, $"the environment of stage {stage.Name}");
        return decision.Allowed ? null : decision;
    }

    private DeployStepResult? Place(PipelineDefinition definition, StageDefinition stage, StageEnvironment env)
    {
        if (!settings.Tenants.Configured) return null;
        var tenant = settings.Tenants.TenantOf(definition.Name)?.Id;
        var decision = Tenancy.PlacementRules.Decide(tenant, definition.Schutzbedarf, env.Hosts, $"the environment of stage {stage.Name}");
        var evidence = decision.Evidence(tenant ?? "", definition.Schutzbedarf, env.Hosts).ToDictionary(StringComparer.Ordinal);
        if (decision.Allowed) return new DeployStepResult("check", true, null, null, evidence);
        _log.Warning("Placement of {Pipeline} into {Stage} refused: {Code}", definition.Name, stage.Name, decision.Code);
        evidence["detail"] = decision.Message;
        return Fail("check", decision.Code!, decision.Message, evidence);
    }

    private static DeployStepResult Check(DeploymentSpec spec, DeliveryTree tree, IReadOnlyCollection<string> names, StageEnvironment env)
    {
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["deliveryCommit"] = tree.Commit,
            ["manifests"] = spec.Manifests.Folder,
            ["rules"] = "pod-security restricted; allowed kinds " + string.Join(",", env.Rules.AllowedKinds)
                        + (env.Rules.RequireReadOnlyRootFilesystem ? "; read-only root filesystem" : ""),
        };
        IReadOnlyList<ManifestViolation> violations;
        try
        {
            violations = ManifestRenderer.Check(spec, tree.Root, names, env.Rules);
        }
        catch (CheckupException e)
        {
            return Fail("check", DeployErrors.ManifestRejected, e.Message, evidence);
        }

        evidence["violations"] = violations.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (violations.Count > 0)
        {
            var text = string.Join("; ", violations.Take(50).Select(v => v.ToString())) + (violations.Count > 50 ? $"; and {violations.Count - 50} more" : "");
            return Fail("check", DeployErrors.ManifestRejected, $"the delivery's manifests break {violations.Count} rule(s): {text}", evidence);
        }

        evidence["detail"] = $"manifests in {spec.Manifests.Folder} pass the rules for a {env.Kind} stage";
        return new DeployStepResult("check", true, null, null, evidence);
    }

    private async Task<DeployOutcome> DeployGitOpsAsync(DeliveryLifecycle d, StageDefinition stage, GitOpsEnvironment env, DeploymentSpec spec, DeliveryTree tree,
        IReadOnlyDictionary<string, string> pinned, List<DeployStepResult> steps, CancellationToken ct)
    {
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["kind"] = "gitops",
            ["environment.repository"] = env.Repository.ToString(),
            ["environment.branch"] = env.Branch,
            ["environment.path"] = env.Path,
            ["environment.namespace"] = env.Namespace,
            ["deliveryCommit"] = tree.Commit,
        };
        RenderedManifests rendered;
        try
        {
            rendered = ManifestRenderer.Render(spec, tree.Root, new StageOverlay(env.Namespace, env.Parameters, new Dictionary<string, string>()) { Rules = env.Rules }, pinned,
                new RenderedDelivery(d.DeliveryId, d.Pipeline, d.Tag, stage.Name));
        }
        catch (Exception e) when (e is CheckupException or PipelineException)
        {
            var code = e is ManifestCheckException ? DeployErrors.ManifestRejected : (e as PipelineException)?.Code ?? DeployErrors.ManifestRejected;
            steps.Add(Fail("deploy", code, $"the manifests could not be rendered for {stage.Name}: {e.Message}", evidence));
            return new DeployOutcome(steps, false);
        }

        evidence["manifestsDigest"] = rendered.Digest;
        evidence["files"] = string.Join(" ", rendered.Files.Keys.Order(StringComparer.Ordinal));
        var message = $"Deploy {d.Pipeline} {d.Tag} to {stage.Name}\n\n" +
                      $"Delivery {d.DeliveryId:D} ({d.Pipeline} {d.Tag}), rendered manifests {rendered.Digest}\n" +
                      string.Concat(pinned.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"Image {p.Key}: {p.Value}\n"));
        using var repo = OpenRepository(env);
        var commit = await Task.Run(() => repo.Write(rendered.Files, d.DeliveryId, stage.Name, message, ct), ct).ConfigureAwait(false);
        evidence["environment.commit"] = commit.Commit;
        evidence["environment.previousCommit"] = commit.Previous ?? "";
        evidence["environment.changed"] = commit.Changed ? "true" : "false";
        evidence["environment.signingKey"] = SigningKey(env).ToString();
        evidence["detail"] = commit.Changed
            ? $"{stage.Name}: signed commit {commit.Commit[..12]} on {env.Branch}:{env.Path} ({rendered.Files.Count} files, {rendered.Digest})"
            : $"{stage.Name}: {env.Branch}:{env.Path} already holds this state (commit {commit.Commit[..12]}); nothing to commit";
        _log.Information("Deployed {DeliveryId} to {Stage}: commit {Commit} on {Repository} {Branch} (changed {Changed})",
            d.DeliveryId, stage.Name, commit.Commit, env.Repository, env.Branch, commit.Changed);
        steps.Add(new DeployStepResult("deploy", true, null, null, evidence));
        return new DeployOutcome(steps, true);
    }

    private async Task<DeployOutcome> RunDockerAsync(DeliveryLifecycle d, StageDefinition stage, DockerEnvironment env, DeploymentSpec spec, DeliveryManifest manifest,
        DeliveryTree tree, IReadOnlyDictionary<string, string> pinned, List<DeployStepResult> steps, CancellationToken ct)
    {
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal) { ["kind"] = "docker", ["environment.endpoint"] = env.Endpoint.ToString(), ["environment.network"] = env.Network };
        if (spec.AcceptanceTests is not { } tests)
        {
            steps.Add(Fail("deploy", DeployErrors.NoDeployment, $"stage {stage.Name} runs acceptance tests, but {d.Tag}'s deployment section declares none ('deployment.acceptanceTests')", evidence));
            return new DeployOutcome(steps, false);
        }

        var mockImages = tests.Mocks.Select(m => m.Image).ToHashSet(StringComparer.Ordinal);
        var app = manifest.Images.Select(i => i.Name).FirstOrDefault(n => n != tests.Image && !mockImages.Contains(n)) ?? tests.Image;
        var request = new DockerRunRequest
        {
            DeliveryId = d.DeliveryId.ToString("D"),
            Stage = stage.Name,
            App = new DockerContainerSpec("app", pinned[app], Environment: env.Parameters),
            Mocks = tests.Mocks.Select(m => new DockerContainerSpec(m.Name, pinned[m.Image], m.Command.Count > 0 ? m.Command : null, m.Healthcheck.Count > 0 ? m.Healthcheck : null)).ToList(),
            Test = new DockerContainerSpec("test", pinned[tests.Image], tests.Command.Count > 0 ? tests.Command : null, Environment: tests.Env),
            TestDataPath = tests.TestData is { } data ? Path.Combine(tree.Root, data) : null,
            PassExitCodes = tests.PassExitCodes.Select(c => (long)c).ToList(),
            TestTimeout = tests.Timeout,
        };
        var registry = pinned[app][..pinned[app].IndexOf('/')];
        using var runner = new DockerStageRunner(env.ToRunnerSettings(registry), time, _log);
        var result = await runner.RunAsync(request, ct).ConfigureAwait(false);
        if (result.IsTransient)
            throw new DeployException(result.Code, $"the Docker engine of stage {stage.Name} failed: {result.Message}; the run resumes on the next pass", isTransient: true);

        evidence["run"] = result.RunId;
        evidence["cleanedUp"] = result.CleanedUp ? "true" : "false";
        foreach (var c in result.Containers)
        {
            var prefix = $"container.{c.Name}";
            evidence[prefix + ".image"] = c.Image;
            evidence[prefix + ".role"] = c.Role.ToString().ToLowerInvariant();
            evidence[prefix + ".health"] = c.Health;
            evidence[prefix + ".exitCode"] = c.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "";
            evidence[prefix + ".logDigest"] = c.LogDigest;
            evidence[prefix + ".logBytes"] = c.LogBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var appResult = result.Of(DockerContainerRole.App);
        var started = appResult is { Health: "healthy" or "none" } && result.Code != DockerCodes.Unhealthy && result.Code != DockerCodes.Start && result.Code != DockerCodes.Pull
                      && result.Code != DockerCodes.RootRefused && result.Code != DockerCodes.Request;
        var deployEvidence = new Dictionary<string, string>(evidence) { ["detail"] = started ? $"{stage.Name}: app {pinned[app]} runs and is healthy (run {result.RunId})" : $"{stage.Name}: {result.Message}" };
        steps.Add(started
            ? new DeployStepResult("deploy", true, null, null, deployEvidence)
            : Fail("deploy", result.Code, result.Message, deployEvidence));
        if (!started) return new DeployOutcome(steps, false);

        var testEvidence = new Dictionary<string, string>(evidence)
        {
            ["tests.image"] = pinned[tests.Image],
            ["tests.code"] = result.Code,
            ["detail"] = result.Passed ? $"{stage.Name}: acceptance tests passed (run {result.RunId})" : $"{stage.Name}: {result.Message}",
        };
        steps.Add(result.Passed ? new DeployStepResult("verification", true, null, null, testEvidence) : Fail("verification", result.Code, result.Message, testEvidence));
        return new DeployOutcome(steps, false);
    }

    /// <summary>delivery.yaml image name → its reference in the stage (<c>registry/repo@sha256:…</c>): the repository ending in <c>/name</c>.</summary>
    private static Dictionary<string, string> Pinned(DeliveryLifecycle d, IReadOnlyList<string> names)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var image = d.Images.FirstOrDefault(i => i.Repository.EndsWith("/" + name, StringComparison.Ordinal) || i.Repository == name)
                        ?? throw new DeployException(DeployErrors.Internal, $"image '{name}' of delivery.yaml is not among the delivery's images in the stage ({string.Join(", ", d.Images.Select(i => i.Reference))})");
            map[name] = image.Reference;
        }

        return map;
    }

    private EnvironmentRepository OpenRepository(GitOpsEnvironment env) =>
        EnvironmentRepository.Open(settings.WorkDir, env, GitCredentials.FromFile(env.CredentialsFile ?? settings.InternalGit.CredentialsFile), SigningKey(env), time);

    private static SshSigner SigningKey(GitOpsEnvironment env)
    {
        try
        {
            return SshSigner.FromFile(env.SigningKeyFile);
        }
        catch (CheckupException e)
        {
            throw new DeployException(DeployErrors.SigningKey, $"{e.Message}; the stage's commits cannot be signed", inner: e);
        }
    }

    private static DeployStepResult Fail(string step, string code, string reason, Dictionary<string, string> evidence) =>
        new(step, false, code, reason, new Dictionary<string, string>(evidence, StringComparer.Ordinal) { ["detail"] = reason });
}
