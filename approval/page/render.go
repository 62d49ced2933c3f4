package page

import (
	"html/template"
	"io"
	"strings"
	"time"
)

// view is anything the page renders.
type view interface {
	execute(w io.Writer) error
}

// pageView is the approval form for one open page.
type pageView struct {
	Request
	CSRF     string
	Deadline time.Time
}

// RiskLabel is the risk as shown: upper case, and an empty or unknown one
// says it is treated as high.
func (v pageView) RiskLabel() string {
	r := strings.ToUpper(strings.TrimSpace(v.Risk))
	switch r {
	case "HIGH", "MEDIUM", "LOW", "NONE", "INFO":
		return r
	case "":
		return "UNKNOWN (treated as high)"
	default:
		return r + " (unknown level, treated as high)"
	}
}

// RiskClass picks the risk's colour.
func (v pageView) RiskClass() string {
	switch strings.ToLower(strings.TrimSpace(v.Risk)) {
	case "low", "none", "info":
		return "low"
	case "medium":
		return "medium"
	default:
		return "high"
	}
}

func (v pageView) execute(w io.Writer) error { return templates.ExecuteTemplate(w, "page", v) }

// resultView says what happened after a decision.
type resultView struct {
	Outcome
	Command string
}

func (v resultView) execute(w io.Writer) error { return templates.ExecuteTemplate(w, "result", v) }

// notice is an error or status page.
type notice struct{ Title, Text string }

func (v notice) execute(w io.Writer) error { return templates.ExecuteTemplate(w, "notice", v) }

// One stylesheet, inline (the CSP allows inline style only), readable on a
// phone: one column, large tap targets, no external fonts.
const style = `
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}
main{max-width:42rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.5rem 0 1rem}
h2{font-size:1rem;margin:1.25rem 0 .25rem}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #c9ced6;border-radius:6px;padding:.75rem;margin:0;font-size:.95rem}
.risk{display:inline-block;font-weight:700;padding:.2rem .6rem;border-radius:4px}
.risk.high{background:#fde2e1;color:#8a1c17}.risk.medium{background:#fff1cc;color:#6b4a00}.risk.low{background:#e3f4e4;color:#1e5b25}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}
dt{font-weight:600}dd{margin:0;word-break:break-all}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=text],textarea{box-sizing:border-box;width:100%;font:inherit;padding:.6rem;border:1px solid #8a93a0;border-radius:6px}
textarea{min-height:4.5rem}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem;flex-wrap:wrap}
button{font:inherit;font-weight:700;padding:.8rem 1.6rem;border-radius:6px;border:2px solid;cursor:pointer;flex:1 1 8rem}
button.approve{background:#1d6b2c;border-color:#1d6b2c;color:#fff}
button.deny{background:#fff;border-color:#8a1c17;color:#8a1c17}
.what{background:#fff;border-left:4px solid #4a6fa5;padding:.5rem .75rem}
.outcome.approved{color:#1d6b2c}.outcome.denied{color:#8a1c17}
small{color:#59616c}
`

var templates = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.}} · kubeq-mcp</title>
<style>` + style + `</style></head><body><main>{{end}}

{{define "page"}}{{template "head" "Approve or deny"}}
<h1>KubeIntellect wants to run a command on your cluster</h1>
<p>Risk: <span id="risk" class="risk {{.RiskClass}}">{{.RiskLabel}}</span></p>
<h2>Command</h2>
<pre id="command">{{.Command}}</pre>
{{if .YAML}}<h2>YAML to apply</h2>
<pre id="yaml">{{.YAML}}</pre>{{end}}
<dl>
<dt>Approval id</dt><dd id="approval-id">{{.ApprovalID}}</dd>
<dt>Conversation</dt><dd id="conversation">{{.Conversation}}</dd>
<dt>Decide by</dt><dd id="deadline">{{.Deadline.Format "15:04:05 UTC, 2 Jan 2006"}}</dd>
</dl>
<p class="what"><strong>Approve:</strong> the command runs now on your cluster, exactly as shown.
<strong>Deny:</strong> it does not run. If nobody decides by the time above, it is denied.</p>
{{if .Note}}<p id="note">{{.Note}}</p>{{end}}
<form method="post">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .Confirm}}<label for="confirm">This is a high-risk action. To approve, type <code id="confirm-text">{{.Confirm}}</code></label>
<input type="text" id="confirm" name="confirm" required autocomplete="off" autocapitalize="off" spellcheck="false">
<small>Only needed to approve. Deny needs nothing typed.</small>{{end}}
<label for="reason">Reason <small>(optional; recorded in the audit log)</small></label>
<textarea id="reason" name="reason" maxlength="500"></textarea>
<div class="buttons">
<button type="submit" id="approve" class="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="deny" class="deny" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>
<p><small>This page works once. kubeq-mcp sends your decision to KubeIntellect; the result appears in your chat.</small></p>
</main></body></html>{{end}}

{{define "result"}}{{template "head" "Decision recorded"}}
{{if .Approved}}<h1 id="outcome" class="outcome approved">Approved</h1>
{{else}}<h1 id="outcome" class="outcome denied">Denied</h1>{{end}}
<p id="why">{{.Text}}</p>
<pre id="command">{{.Command}}</pre>
<p><small>You can close this page. The result appears in your chat.</small></p>
</main></body></html>{{end}}

{{define "notice"}}{{template "head" .Title}}
<h1 id="outcome">{{.Title}}</h1>
<p id="why">{{.Text}}</p>
</main></body></html>{{end}}
`))
