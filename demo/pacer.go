package demo

import (
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Pauses at pace 1, chosen so that a person watching the progress can read
// each step, and an investigation lasts a few seconds.
const (
	statusPause = 250 * time.Millisecond // between status phases
	linePause   = 30 * time.Millisecond  // between lines of a streamed answer
	thinkPause  = 400 * time.Millisecond // the model reading tool output
)

// pacer makes script builders whose pauses are scaled by pace. total, when
// set, adds up every pause written (tests read it).
type pacer struct {
	pace  float64
	total *time.Duration
}

func newPacer(pace float64) pacer { return pacer{pace: pace} }

// builder is one Script under construction.
type builder struct {
	p     pacer
	steps kubeqtest.Script
}

func (p pacer) script() *builder { return &builder{p: p} }

func (b *builder) add(steps ...kubeqtest.Step) *builder {
	b.steps = append(b.steps, steps...)
	return b
}

// pause sleeps d scaled by the pace; at pace 0 it writes nothing.
func (b *builder) pause(d time.Duration) *builder {
	d = time.Duration(float64(d) * b.p.pace)
	if d <= 0 {
		return b
	}
	if b.p.total != nil {
		*b.p.total += d
	}
	return b.add(kubeqtest.Sleep(d))
}

func (b *builder) status(phase, message string) *builder {
	return b.pause(statusPause).add(kubeqtest.Status(phase, message))
}

// preamble is how the real server opens every turn.
func (b *builder) preamble() *builder {
	return b.status("loading", "Loading conversation context…").
		status("snapshot", "Fetching cluster snapshot…").
		status("analyzing", "Analyzing your request…")
}

// tool runs a tool: the call, the time it takes, its output. An empty
// command is a non-kubectl tool ("Calling <tool>" on the wire).
func (b *builder) tool(tool, command, output string, took time.Duration) *builder {
	return b.add(kubeqtest.ToolCall(tool, command)).pause(took).add(kubeqtest.ToolResult(tool, output))
}

func (b *builder) kubectl(command, output string, took time.Duration) *builder {
	return b.tool("run_kubectl", command, output, took)
}

func (b *builder) plan(steps ...kubeqtest.PlanStep) *builder {
	return b.add(kubeqtest.Plan(steps...))
}

// answer streams markdown line by line, as a model writes it.
func (b *builder) answer(markdown string) *builder {
	lines := strings.SplitAfter(markdown, "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		if i > 0 {
			b.pause(linePause)
		}
		b.add(kubeqtest.Tokens(line))
	}
	return b
}

func (b *builder) usage(prompt, completion, llmCalls int) *builder {
	return b.add(kubeqtest.Usage(prompt, completion, prompt+completion, llmCalls))
}

func (b *builder) done() kubeqtest.Script { return b.steps }

// planSteps builds a plan from descriptions where the first done are done
// and the next one is in progress.
func planSteps(done int, descriptions ...string) []kubeqtest.PlanStep {
	steps := make([]kubeqtest.PlanStep, len(descriptions))
	for i, d := range descriptions {
		status := "pending"
		switch {
		case i < done:
			status = "done"
		case i == done:
			status = "in_progress"
		}
		steps[i] = kubeqtest.PlanStep{Description: d, Status: status}
	}
	return steps
}

// simulatedNote ends every scripted answer.
const simulatedNote = "\n\n_(simulated: this answer comes from kubeq-mcp demo mode; no real cluster was queried or changed)_"
