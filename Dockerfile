# kubeq-mcp as a container: a static binary on distroless, running as non-root,
# serving streamable HTTP on :8080 (endpoint /mcp, liveness /healthz).
# The server refuses a non-loopback address without a bearer token, so run it with
# KUBEQ_MCP_HTTP_TOKEN set (and KUBE_Q_URL, KUBE_Q_API_KEY for the backend).
#
#   docker build --build-arg VERSION=v0.1.0 -t kubeq-mcp .
#   docker run --rm -p 8080:8080 -e KUBEQ_MCP_HTTP_TOKEN=... -e KUBE_Q_URL=... kubeq-mcp
#
# For stdio instead: docker run -i --rm -e KUBE_Q_URL=... kubeq-mcp --transport stdio

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version --version and initialize report. .git is not in the build context, so the
# module build info has none: without --build-arg VERSION=... the image says dev.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/kubeq-mcp .

FROM gcr.io/distroless/static-debian12:nonroot
# The MCP registry checks this label against server.json's name for OCI packages.
LABEL io.modelcontextprotocol.server.name="io.github.kubeq-mcp/kubeq-mcp"
LABEL org.opencontainers.image.source="https://github.com/kubeq-mcp/kubeq-mcp"
COPY --from=build /out/kubeq-mcp /usr/local/bin/kubeq-mcp
# 65532 is distroless's nonroot user; numeric so Kubernetes runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kubeq-mcp"]
CMD ["--transport", "http", "--addr", "0.0.0.0:8080"]
