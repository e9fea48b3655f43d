# The engine's own image: multi-stage build, runs as a non-root user on a chiseled runtime image
# with no shell and no package manager.
#   docker build -t pipeline-engine .
#   docker run --rm -v /etc/pipeline:/etc/pipeline:ro -v /var/lib/pipeline:/var/lib/pipeline pipeline-engine daemon

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props Pipeline.sln ./
COPY Pipeline.Engine/Pipeline.Engine.csproj Pipeline.Engine/
COPY Pipeline.Checkup/Pipeline.Checkup.csproj Pipeline.Checkup/
COPY Pipeline.Registry/Pipeline.Registry.csproj Pipeline.Registry/
RUN dotnet restore Pipeline.Engine/Pipeline.Engine.csproj -r linux-x64
COPY Pipeline.Engine/ Pipeline.Engine/
COPY Pipeline.Checkup/ Pipeline.Checkup/
COPY Pipeline.Registry/ Pipeline.Registry/
RUN dotnet publish Pipeline.Engine/Pipeline.Engine.csproj -c Release -r linux-x64 --self-contained false \
      --no-restore -o /out \
 && rm -f /out/*.pdb

# git for the streamed export and the push to VCS B (the engine runs the locked-down git binary):
# the binary, its smart-HTTP helpers and exactly the libraries they link, from the same Ubuntu release
# as the chiseled runtime, gathered into /gitroot.
FROM ubuntu:24.04 AS git
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
 && mkdir -p /gitroot/usr/bin /gitroot/usr/lib/git-core \
 && cp -L /usr/bin/git /gitroot/usr/bin/git \
 && cp -L /usr/lib/git-core/git-remote-http /usr/lib/git-core/git-remote-https /gitroot/usr/lib/git-core/ \
 && for lib in $(ldd /usr/bin/git /usr/lib/git-core/git-remote-https | awk '/=> \//{print $3}' | sort -u); do \
      mkdir -p "/gitroot$(dirname "$lib")" && cp -L "$lib" "/gitroot$lib"; done

# Chiseled: no shell, no package manager, non-root user "app" (uid 1654) by default.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled AS runtime
WORKDIR /app
COPY --from=git /gitroot/ /
COPY --from=build /out/ /app/
COPY pipelines/ /etc/pipeline/pipelines/
USER 1654:1654
ENV PIPELINE_CONFIG=/etc/pipeline/engine.yaml \
    DOTNET_gcServer=0
ENTRYPOINT ["/app/pipeline"]
CMD ["daemon"]
