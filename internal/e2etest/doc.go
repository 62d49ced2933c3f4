// Package e2etest holds end-to-end tests of the built kubeq-mcp binary,
// driven by the official go-sdk client (an implementation we did not
// write) against the fake KubeIntellect. The tests are slow: they are
// skipped with -short and unless KUBEQ_E2E_PROGRESS=1 (scripts/test.sh sets
// it and runs them on their own, with -v, so their figures are printed).
package e2etest
