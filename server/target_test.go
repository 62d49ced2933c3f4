package server

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

func TestConfirmTarget(t *testing.T) {
	cases := map[string]string{
		// The examples of the issue.
		"kubectl delete pod web-1 -n shop":             "web-1",
		"kubectl drain node-3":                         "node-3",
		"kubectl delete deployment/web":                "web",
		"kubectl -n shop delete pod web-1":             "web-1",
		"kubectl scale deployment web --replicas=3":    "web",
		"kubectl rollout restart deployment/web":       "web",
		"kubectl set image deployment/web app=x":       "web",
		"garbage":                                      "approve",
		"":                                             "approve",
		"kubectl":                                      "approve",
		"kubectl delete":                               "approve",
		"kubectl delete pod":                           "approve",
		"please approve":                               "approve",
		"rm -rf /":                                     "approve",
		"kubectl scale deployment web --replicas 3":    "web",
		"kubectl scale --replicas 3 deployment/web":    "web",
		"kubectl scale --replicas=3 deployment/web":    "web",
		"kubectl delete pod -n shop web-1":             "web-1",
		"kubectl delete pod web-1 --namespace shop":    "web-1",
		"kubectl --namespace=shop delete pod web-1":    "web-1",
		"kubectl --context prod -n shop delete pod x1": "x1",
		"kubectl delete pod web-1 --grace-period 0":    "web-1",
		"kubectl delete pod web-1 --force --now":       "web-1",
		"kubectl delete pod/web-1 -n shop":             "web-1",
		"kubectl delete namespace shop":                "shop",
		"kubectl delete ns/shop":                       "shop",
		"kubectl delete node node-3":                   "node-3",
		"kubectl delete crd foos.example.com":          "foos.example.com",
		"kubectl drain node-3 --ignore-daemonsets --delete-emptydir-data --force": "node-3",
		"kubectl drain --ignore-daemonsets node-3":                                "node-3",
		"kubectl cordon node-3":                                                   "node-3",
		"kubectl uncordon node-3":                                                 "node-3",
		"kubectl taint nodes node-3 dedicated=gpu:NoSchedule":                     "node-3",
		"kubectl rollout restart deployment web -n shop":                          "web",
		"kubectl rollout undo deploy/web --to-revision=2":                         "web",
		"kubectl set image deployment web app=nginx:1.25":                         "web",
		"kubectl set resources deployment web --limits=cpu=200m":                  "web",
		"kubectl patch deployment web -p {\"spec\":{\"replicas\":3}}":             "web",
		"kubectl patch deployment web --type merge -p {\"spec\":{}}":              "web",
		"kubectl label pod web-1 env=prod":                                        "web-1",
		"kubectl create namespace shop":                                           "shop",
		"/usr/local/bin/kubectl delete pod web-1":                                 "web-1",
		// No single name: the human types "approve".
		"kubectl delete pods -l app=web -n shop": "approve",
		"kubectl delete pod --all -n shop":       "approve",
		"kubectl delete all --all":               "approve",
		"kubectl apply -f -":                     "approve",
		"kubectl apply -k overlays/prod":         "approve",
		"kubectl delete -f manifest.yaml":        "approve",
		"kubectl replace --force -f web.yaml":    "approve",
	}
	for command, want := range cases {
		assert.Equalf(t, want, confirmTarget(command), "confirmTarget(%q)", command)
	}
}

// The command as the backend shows it may quote the name; the human should
// type the name, not the quotes.
func TestConfirmTargetQuotedName(t *testing.T) {
	assert.Equal(t, "web-1", confirmTarget(`kubectl delete pod "web-1" -n shop`))
	assert.Equal(t, "web-1", confirmTarget(`kubectl delete pod 'web-1' -n shop`))
}

// confirmFor asks for the name only for high risk, and only when the
// server requires typed confirmations.
func TestConfirmForRisk(t *testing.T) {
	on := &Server{cfg: Config{ConfirmHighRisk: true}}
	off := &Server{cfg: Config{ConfirmHighRisk: false}}
	high := hitlOf(podCommand, "high")
	assert.Equal(t, podTarget, on.confirmFor(high))
	assert.Equal(t, podTarget, on.confirmFor(hitlOf(podCommand, "HIGH")))
	assert.Equal(t, "", on.confirmFor(hitlOf(scaleCommand, "medium")))
	assert.Equal(t, "", on.confirmFor(hitlOf(scaleCommand, "")))
	assert.Equal(t, "", off.confirmFor(high))
}

func hitlOf(command, risk string) kubeq.HitlRequest {
	return kubeq.HitlRequest{ApprovalID: "act", Action: command, Risk: risk}
}
