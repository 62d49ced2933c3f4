package schema

// ApprovalAnswer is what a human submits in the approval form.
type ApprovalAnswer struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	Confirm  string `json:"confirm,omitempty"`
}

// Form decisions.
const (
	FormApprove = "approve"
	FormDeny    = "deny"
)

// ApprovalForm returns the elicitation schema for one gate. The MCP spec
// allows only a flat object of primitive properties here, so it is written
// out rather than reflected. confirmTarget, when not empty, adds a field in
// which the human types it to approve. That field is not required: a
// client that enforces required fields would otherwise make the human type
// the target's name just to deny. The server checks it only on approve.
func ApprovalForm(confirmTarget string) map[string]any {
	props := map[string]any{
		"decision": map[string]any{
			"type":        "string",
			"title":       "Decision",
			"description": "approve runs the command on the cluster; deny cancels it.",
			"enum":        []string{FormApprove, FormDeny},
			"enumNames":   []string{"Approve: run it", "Deny: do not run it"},
		},
		"reason": map[string]any{
			"type":        "string",
			"title":       "Reason (optional)",
			"description": "Why you decided so; recorded in the audit log.",
			"maxLength":   500,
		},
	}
	if confirmTarget != "" {
		props["confirm"] = map[string]any{
			"type":        "string",
			"title":       "Type " + confirmTarget + " to confirm",
			"description": "High-risk action: to approve, type the target's name exactly. Not needed to deny.",
			"maxLength":   253,
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": []string{"decision"}}
}
