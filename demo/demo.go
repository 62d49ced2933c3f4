// Package demo is the simulated KubeIntellect behind `kubeq-mcp --demo`: the
// fake backend of kubeqtest with a few scripted investigations of a made-up
// "shop" namespace, so that a newcomer can wire up an MCP client and watch
// progress and an approval form before they have a cluster. Every scripted
// answer says it is simulated.
//
// Questions are routed by keywords, not matched exactly, because the model
// in an MCP client rephrases what its user typed: "why does checkout keep
// crashing?" and "checkout is in CrashLoopBackOff, why?" get the same
// investigation. Anything else gets a short answer that lists Questions.
package demo

import (
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// DefaultNamespace is the namespace of the scripted cluster, used when a
// question names none.
const DefaultNamespace = "shop"

// Option configures the simulated backend.
type Option func(*settings)

type settings struct {
	pace float64
}

// WithPace multiplies every pause of the scripts. 1 (the default) paces an
// investigation over a few seconds so a person sees it progress; 0 removes
// the pauses (tests); 2 is twice as slow. Negative values count as 0.
func WithPace(f float64) Option {
	return func(s *settings) {
		if f < 0 {
			f = 0
		}
		s.pace = f
	}
}

// Questions are example questions that reach each scripted investigation,
// in the order a tour would ask them: a diagnosis, a metrics question, then
// the changes that raise approval gates (high risk, then medium).
func Questions() []string {
	return []string{
		QuestionCrash,
		QuestionMemory,
		QuestionDelete,
		QuestionRestart,
		QuestionScale,
	}
}

// Pauses is how long the scripted pauses of question's investigation add up
// to at pace: a run at that pace takes at least this long, whatever the
// machine (tests derive their time bounds from it).
func Pauses(question string, pace float64) time.Duration {
	var total time.Duration
	route(question, "", pacer{pace: pace, total: &total})
	return total
}

// The example questions, one per scripted investigation.
const (
	QuestionCrash   = "Why is checkout crashing in namespace shop?"
	QuestionMemory  = "What's using the most memory in namespace shop?"
	QuestionDelete  = "Delete the crashing checkout pod in namespace shop"
	QuestionRestart = "Restart the cart deployment in namespace shop"
	QuestionScale   = "Scale the frontend deployment to 3 replicas in namespace shop"
)

// NewBackend returns the simulated KubeIntellect, not yet listening: call
// Start (127.0.0.1, random port), mount Handler on a listener of your own,
// or use Transport in-process. Close it when done.
func NewBackend(opts ...Option) *kubeqtest.Server {
	s := settings{pace: 1}
	for _, o := range opts {
		o(&s)
	}
	srv := kubeqtest.NewUnstartedServer(
		kubeqtest.WithUsageFrame(true),
		kubeqtest.WithHeartbeat(15*time.Second),
		kubeqtest.WithNamespaces("default", "kube-system", "monitoring", DefaultNamespace),
	)
	srv.HandleFunc(func(req kubeqtest.Request) kubeqtest.Script {
		return route(req.Question, req.Namespace, newPacer(s.pace))
	})
	return srv
}
