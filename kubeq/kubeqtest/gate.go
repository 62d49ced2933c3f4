package kubeqtest

import (
	"strings"
	"time"
)

// Gate is a Step that raises a HITL approval gate, the way run_kubectl does
// on a mutating command:
//
//   - a tool_call frame "Running: <command>" (the real server emits it before
//     the gate; SkipToolCall leaves it out);
//   - the HITL content chunk: the markdown approval prompt, finish_reason
//     null, and hitl_required, action_id, risk_level, human_summary on the
//     choice;
//   - then the turn ends normally (usage, stop, [DONE]); steps after the Gate
//     are not written.
//
// The session now has a pending gate and the next message on the same
// X-Session-ID answers it. When the request carried auto_approve: true (or
// the question was an auto-approve phrase) and the gate is not
// AlwaysConfirm, no gate is raised: OnApprove runs inline and the script
// continues.
type Gate struct {
	Command       string // the command; "kubectl " is prefixed when missing
	Risk          string // "high" or "medium"; derived from the verb when empty
	YAML          string // stdin YAML, shown under "**YAML to apply:**" when set
	Tool          string // default "run_kubectl"
	ActionID      string // default a fresh uuid4
	AlwaysConfirm bool   // ignore auto_approve, like delete namespace or drain
	SkipToolCall  bool   // do not write the tool_call frame before the gate

	// OnApprove is written when the gate is approved. Default: the tool
	// call again, a tool result like `pod "x" deleted`, and a short answer.
	OnApprove Script
	// OnDeny is written on denial after the tool_result
	// "Action cancelled by user." that the backend always sends. Default: a
	// short answer.
	OnDeny Script
}

// GateInfo describes a pending gate.
type GateInfo struct {
	Session  string
	ActionID string
	Command  string // human_summary
	Risk     string
	YAML     string
	Opened   time.Time
	gate     Gate
}

// Decision is how a pending gate was resolved.
type Decision struct {
	Session   string
	ActionID  string
	Command   string
	Approved  bool
	Message   string // the raw last user message that decided it ("" when Auto)
	Auto      bool   // approved by auto_approve or an auto-approve phrase, without a pause
	RequestID string
	At        time.Time
}

func (g Gate) normalized(s *Server) Gate {
	if g.Tool == "" {
		g.Tool = "run_kubectl"
	}
	if !strings.HasPrefix(g.Command, "kubectl ") && g.Tool == "run_kubectl" {
		g.Command = "kubectl " + strings.TrimSpace(g.Command)
	}
	if g.Risk == "" {
		g.Risk = riskOf(g.Command, g.AlwaysConfirm)
	}
	if g.ActionID == "" {
		g.ActionID = s.newUUID()
	}
	return g
}

func (g Gate) write(t *turn) error {
	g = g.normalized(t.srv)
	if !g.SkipToolCall {
		if err := t.toolCall(g.Tool, g.Command); err != nil {
			return err
		}
	}
	if t.autoApprove && !g.AlwaysConfirm {
		t.srv.recordDecision(Decision{Session: t.session.id, ActionID: g.ActionID, Command: g.Command,
			Approved: true, Auto: true, RequestID: t.req.RequestID, At: time.Now()})
		for _, step := range g.approveScript(false) {
			if err := step.write(t); err != nil || t.end != endNormal {
				return err
			}
		}
		return nil
	}
	if err := t.alive(); err != nil {
		return err // the turn was cancelled before the interrupt: no gate
	}
	t.srv.openGate(t.session.id, GateInfo{Session: t.session.id, ActionID: g.ActionID, Command: g.Command,
		Risk: g.Risk, YAML: g.YAML, Opened: time.Now(), gate: g})
	var yaml any
	if g.YAML != "" {
		yaml = g.YAML
	}
	t.record(Obj{{"type", "hitl_request"}, {"action_id", g.ActionID}, {"risk_level", g.Risk}, {"command", g.Command}, {"stdin_yaml", yaml}})
	t.end = endPaused
	return t.chunk(Obj{{"content", approvalPrompt(g.Risk, g.Command, g.YAML)}, {"role", "assistant"}}, nil,
		Obj{{"hitl_required", true}, {"action_id", g.ActionID}, {"risk_level", g.Risk}, {"human_summary", g.Command}})
}

// approvalPrompt is the markdown the server puts in the HITL chunk.
func approvalPrompt(risk, command, yaml string) string {
	marker := "🟡"
	if risk == "high" {
		marker = "🔴"
	}
	var b strings.Builder
	b.WriteString("\n\n---\n" + marker + " **Approval Required** — risk level: `" + strings.ToUpper(risk) + "`\n\n")
	b.WriteString("**Command:**\n```\n" + command + "\n```\n")
	if yaml != "" {
		if r := []rune(yaml); len(r) > 3000 {
			yaml = string(r[:3000]) + "\n... [truncated]"
		}
		b.WriteString("\n**YAML to apply:**\n```yaml\n" + yaml + "\n```\n")
	}
	b.WriteString("\n**Type `yes` or `/approve` to proceed, or `no` / `/deny` to cancel.**")
	return b.String()
}

// approveScript is what runs once the gate is approved; resumed says the
// graph re-runs the tool node, which emits the tool_call again.
func (g Gate) approveScript(resumed bool) Script {
	if g.OnApprove != nil {
		return g.OnApprove
	}
	var s Script
	if resumed {
		s = append(s, ToolCall(g.Tool, g.Command))
	}
	return append(s,
		ToolResult(g.Tool, toolOutput(g.Command)),
		Tokens("Done: `"+g.Command+"` completed."),
	)
}

func (g Gate) denyScript() Script {
	s := Script{ToolResult(g.Tool, "Action cancelled by user.")}
	if g.OnDeny != nil {
		return append(s, g.OnDeny...)
	}
	return append(s, Tokens("Understood: I did not run `"+g.Command+"`."))
}

// riskOf classifies like kubectl_tool.py: delete, drain, replace, taint and
// always-confirm commands are high; everything else medium.
func riskOf(command string, alwaysConfirm bool) string {
	if alwaysConfirm {
		return "high"
	}
	f := strings.Fields(command)
	if len(f) > 1 {
		switch f[1] {
		case "delete", "drain", "replace", "taint":
			return "high"
		}
	}
	return "medium"
}

// toolOutput invents kubectl-like output for a mutating command, e.g.
// `pod "web-1" deleted` for "kubectl delete pod web-1 -n shop".
func toolOutput(command string) string {
	f := strings.Fields(command)
	if len(f) < 3 || f[0] != "kubectl" {
		return "OK"
	}
	verb, kind, name := f[1], f[2], ""
	switch {
	case verb == "drain" || verb == "cordon" || verb == "uncordon":
		kind, name = "node", f[2]
	case strings.Contains(kind, "/"): // kubectl scale deployment/web
		i := strings.IndexByte(kind, '/')
		kind, name = kind[:i], kind[i+1:]
	case len(f) > 3:
		name = f[3]
	}
	past := map[string]string{"delete": "deleted", "scale": "scaled", "cordon": "cordoned", "uncordon": "uncordoned",
		"drain": "drained", "patch": "patched", "apply": "configured", "create": "created", "replace": "replaced"}[verb]
	if past == "" {
		return "OK"
	}
	if verb == "delete" {
		return kind + ` "` + name + `" ` + past
	}
	return kind + "/" + name + " " + past
}
