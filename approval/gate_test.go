package approval

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

func TestConfirmText(t *testing.T) {
	cases := map[string]string{
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
		`kubectl delete pod "web-1" -n shop`:                                      "web-1",
		`kubectl delete pod 'web-1' -n shop`:                                      "web-1",
		// Several named targets: all of them, space-separated.
		"kubectl delete pod web-1 web-2 -n shop":      "web-1 web-2",
		"kubectl delete pod/web-1 pod/web-2 -n shop":  "web-1 web-2",
		"kubectl drain node-3 node-4":                 "node-3 node-4",
		"kubectl delete deployment web api db -n pro": "web api db",
		// Bulk changes: the namespace and the word all.
		"kubectl delete pods -l app=web -n shop":            "shop/all",
		"kubectl delete pod --all -n prod":                  "prod/all",
		"kubectl delete pod --all --namespace=prod":         "prod/all",
		"kubectl delete all --all":                          "default/all",
		"kubectl apply -f -":                                "default/all",
		"kubectl apply -n shop -f -":                        "shop/all",
		"kubectl apply -k overlays/prod":                    "default/all",
		"kubectl delete -f manifest.yaml -n prod":           "prod/all",
		"kubectl replace --force -f web.yaml":               "default/all",
		"kubectl delete pods --field-selector=status.phase": "default/all",
		"kubectl delete pods --all -A":                      "all-namespaces/all",
		"kubectl delete pods web-1 -l app=web -n prod":      "prod/all",
	}
	for command, want := range cases {
		assert.Equalf(t, want, ConfirmText(command), "ConfirmText(%q)", command)
	}
}

// An empty or unknown risk needs the typed confirmation, like high.
func TestNewGateConfirmByRisk(t *testing.T) {
	h := func(risk string) kubeq.HitlRequest {
		return kubeq.HitlRequest{ApprovalID: "a", Action: "kubectl delete pod web-1 -n shop", Risk: risk}
	}
	for _, risk := range []string{"high", "HIGH", "", "critical", "unknown", "hgih", " high "} {
		assert.Equalf(t, "web-1", NewGate(h(risk), true).Confirm, "risk %q", risk)
	}
	for _, risk := range []string{"low", "medium", "MEDIUM", "Low"} {
		assert.Equalf(t, "", NewGate(h(risk), true).Confirm, "risk %q", risk)
	}
	assert.Equal(t, "", NewGate(h("high"), false).Confirm, "confirmation switched off")
}

func TestJudgeStrict(t *testing.T) {
	g := NewGate(kubeq.HitlRequest{ApprovalID: "a1", Action: "kubectl delete pod web-1", Risk: "high"}, true)
	other := NewGate(kubeq.HitlRequest{ApprovalID: "a2", Action: "kubectl delete pod web-1", Risk: "high"}, true)
	ok := Judge(g, Answer{Action: "accept", Content: json.RawMessage(`{"decision":"approve","confirm":"web-1","reason":"r"}`)})
	assert.True(t, ok.Approves(g))
	assert.False(t, ok.Approves(other), "a verdict approves only the gate it judged")
	assert.Equal(t, "r", ok.Comment)
	assert.True(t, Judge(g, Answer{Action: "accept", Content: json.RawMessage(`{"decision":"approve","confirm":"  web-1 "}`)}).Approves(g))

	deny := map[string]schema.Reason{
		`{"decision":"deny","decision":"approve","confirm":"web-1"}`: schema.ReasonError,
		`{"decision":"approve","confirm":"web-1","confirm":"web-1"}`: schema.ReasonError,
		`{"Decision":"approve","confirm":"web-1"}`:                   schema.ReasonError,
		`{"DECISION":"approve","confirm":"web-1"}`:                   schema.ReasonError,
		`{"decision":"approve","CONFIRM":"web-1"}`:                   schema.ReasonError,
		`{"decision":"approve","confirm":"web-1","action":"x"}`:      schema.ReasonError,
		`{"decision":["approve"],"confirm":"web-1"}`:                 schema.ReasonError,
		`{"decision":"approve","confirm":"web-1"} {}`:                schema.ReasonError,
		`["approve"]`: schema.ReasonError,
		``:            schema.ReasonError,
		`{"decision":"APPROVE","confirm":"web-1"}`:   schema.ReasonError,
		`{"decision":"approve","confirm":"web-2"}`:   schema.ReasonConfirmationMismatch,
		`{"decision":"approve"}`:                     schema.ReasonConfirmationMismatch,
		`{"decision":"deny","confirm":"web-1"}`:      schema.ReasonUserDenied,
		`{"decision":"approve","confirm":"web-1 "}x`: schema.ReasonError,
	}
	for content, reason := range deny {
		v := Judge(g, Answer{Action: "accept", Content: json.RawMessage(content)})
		assert.Falsef(t, v.Approves(g), "%s approved", content)
		assert.Equalf(t, reason, v.Reason, "%s", content)
	}
	for action, reason := range map[string]schema.Reason{"decline": schema.ReasonUserDeclined,
		"cancel": schema.ReasonUserCancelled, "ACCEPT": schema.ReasonError, "": schema.ReasonError} {
		v := Judge(g, Answer{Action: action, Content: json.RawMessage(`{"decision":"approve","confirm":"web-1"}`)})
		assert.False(t, v.Approves(g))
		assert.Equal(t, reason, v.Reason, action)
	}
	assert.False(t, Deny(schema.ReasonTimedOut).Approves(g))
	var zero Verdict
	assert.False(t, zero.Approves(Gate{}), "the zero verdict approves nothing")
}

func TestHasDuplicateMembers(t *testing.T) {
	assert.True(t, HasDuplicateMembers([]byte(`{"a":1,"a":2}`)))
	assert.True(t, HasDuplicateMembers([]byte(`{"result":{"content":{"decision":"deny","decision":"approve"}}}`)))
	assert.True(t, HasDuplicateMembers([]byte(`[{"x":[{"b":1,"b":1}]}]`)))
	assert.False(t, HasDuplicateMembers([]byte(`{"a":{"a":1},"b":[{"a":2}]}`)))
	assert.False(t, HasDuplicateMembers([]byte(`not json`)))
	// encoding/json matches names without case and keeps the last: a name
	// spelt twice is a name given twice.
	assert.True(t, HasDuplicateMembers([]byte(`{"action":"accept","content":{"decision":"deny"},"Content":{"decision":"approve"}}`)))
	assert.True(t, HasDuplicateMembers([]byte(`{"result":{"action":"decline","ACTION":"accept"}}`)))
	assert.True(t, HasDuplicateMembers([]byte(`{"deciſion":"approve","decision":"deny"}`)), "ſ folds to s")
	assert.False(t, HasDuplicateMembers([]byte(`{"decision":"deny","decisions":"approve"}`)))
}

// FoldName makes two names equal exactly when encoding/json would decode
// either into the same struct field.
func TestFoldNameMatchesEncodingJSON(t *testing.T) {
	type target struct {
		Content json.RawMessage `json:"content"`
		Kelvin  json.RawMessage `json:"k"`
		Sigma   json.RawMessage `json:"σ"`
	}
	for _, name := range []string{"content", "Content", "CONTENT", "cOnTeNt", "conten", "contents", "ſ",
		"k", "K", "K", "σ", "Σ", "ς", "cοntent" /* Greek omicron */} {
		var got target
		require.NoError(t, json.Unmarshal([]byte(`{`+strconv.Quote(name)+`:1}`), &got))
		for field, value := range map[string]json.RawMessage{"content": got.Content, "k": got.Kelvin, "σ": got.Sigma} {
			assert.Equal(t, value != nil, FoldName(name) == FoldName(field),
				"%q against the field %q: encoding/json and FoldName disagree", name, field)
		}
	}
}

func TestClassify(t *testing.T) {
	assert.Equal(t, Delivered, Classify(nil))
	assert.Equal(t, Delivered, Classify(&kubeq.InterruptedError{}))
	assert.Equal(t, Delivered, Classify(&kubeq.FatalError{}))
	assert.Equal(t, NotDelivered, Classify(&kubeq.StatusError{StatusCode: 400}))
	assert.Equal(t, NotDelivered, Classify(&kubeq.StatusError{StatusCode: 500}))
	assert.Equal(t, Unknown, Classify(&kubeq.StatusError{StatusCode: 502}))
	assert.Equal(t, NotDelivered, Classify(&kubeq.TransportError{}))
	assert.Equal(t, Unknown, Classify(&kubeq.TransportError{MaybeDelivered: true}))
	assert.Equal(t, Unknown, Classify(assert.AnError))
}
