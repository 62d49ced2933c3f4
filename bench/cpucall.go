package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
)

// CPUResult is the CPU-per-call scenario: kubeq-mcp against the bare
// mcp-go floor (ServeFloor), the same calls from the same clients,
// interleaved round by round so that both see the same machine.
type CPUResult struct {
	Sessions, CallsPerSession, Rounds int
	Server, Floor                     []CPURound
	// Against is another kubeq-mcp build (CPUPerCall's against) measured in
	// the same rounds, nil without one: two builds compared on one machine
	// at one time, which separate runs on a shared machine are not.
	Against []CPURound
	// The other build's backend requests per question.
	AgainstChatPerQuestion, AgainstReplayPerQuestion float64
	// Backend requests kubeq-mcp made per question, over all rounds:
	// chat turns and replay-history reads.
	ChatPerQuestion, ReplayPerQuestion float64
}

// CPURound is one server's figures in one round.
type CPURound struct {
	CPUPerCall time.Duration // user+system CPU of the server process / calls
	PeakRSS    int64
	Wall       time.Duration
}

// CPUPerCall runs the scenario. Each session asks its first question
// without a conversation and its later ones on the conversation the first
// returned, as an agent following up does.
//
// With profile set, one more round runs on the instrumented server (the
// same server package) with a CPU profile written to profile and an
// allocation profile beside it (profile + ".allocs"), and one on the floor
// (profile + ".floor", profile + ".floor.allocs"); they are not counted.
func CPUPerCall(ctx context.Context, env *Env, sessions, perSession, rounds int, against, profile string) (CPUResult, error) {
	res := CPUResult{Sessions: sessions, CallsPerSession: perSession, Rounds: rounds}
	if env.Self == "" {
		return res, fmt.Errorf("cpu: the floor server needs the kubeq-bench binary")
	}
	be, url, err := startBackendProc(ctx, env, "--diagnostic")
	if err != nil {
		return res, err
	}
	defer be.Stop()
	// Backend requests are counted around each kubeq-mcp round, per build.
	var ours, theirs counts
	for r := range rounds {
		// Interleaved, and the order alternates, so neither side always
		// runs on a machine the other just warmed or heated.
		sides := []string{"kubeq-mcp", "floor"}
		if against != "" {
			sides = append(sides, "against")
		}
		if r%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			argv := env.binArgs(url)
			switch side {
			case "floor":
				argv = []string{env.Self, "floor"}
			case "against":
				argv[0] = against
			}
			env.logf("cpu: round %d, %s: %d sessions × %d calls", r+1, side, sessions, perSession)
			before, err := backendCounts(url)
			if err != nil {
				return res, err
			}
			round, err := cpuRound(ctx, env, argv, sessions, perSession)
			if err != nil {
				return res, fmt.Errorf("cpu %s: %w", side, err)
			}
			after, err := backendCounts(url)
			if err != nil {
				return res, err
			}
			switch side {
			case "floor":
				res.Floor = append(res.Floor, round)
			case "against":
				res.Against = append(res.Against, round)
				theirs = theirs.plus(after.minus(before))
			default:
				res.Server = append(res.Server, round)
				ours = ours.plus(after.minus(before))
			}
		}
	}
	questions := float64(rounds * sessions * perSession)
	res.ChatPerQuestion = float64(ours.chat) / questions
	res.ReplayPerQuestion = float64(ours.replay) / questions
	res.AgainstChatPerQuestion = float64(theirs.chat) / questions
	res.AgainstReplayPerQuestion = float64(theirs.replay) / questions
	if profile != "" {
		argv, err := env.instrumentedArgs(url)
		if err != nil {
			return res, err
		}
		env.logf("cpu: profile round on the instrumented server → %s", profile)
		if _, err := cpuRoundWith(ctx, env, argv, sessions, perSession, profile); err != nil {
			return res, fmt.Errorf("cpu profile: %w", err)
		}
		env.logf("cpu: profile round on the floor → %s.floor", profile)
		if _, err := cpuRoundWith(ctx, env, []string{env.Self, "floor"}, sessions, perSession, profile+".floor"); err != nil {
			return res, fmt.Errorf("cpu profile of the floor: %w", err)
		}
	}
	return res, nil
}

// cpuRound starts the server, opens the sessions, makes the calls (the
// sessions at once, each session's calls one after another) and reads the
// server's CPU time around the calls alone.
func cpuRound(ctx context.Context, env *Env, argv []string, sessions, perSession int) (CPURound, error) {
	return cpuRoundWith(ctx, env, argv, sessions, perSession, "")
}

func cpuRoundWith(ctx context.Context, env *Env, argv []string, sessions, perSession int, profile string) (CPURound, error) {
	var round CPURound
	p, err := StartHTTPServer(ctx, argv, env.Stderr)
	if err != nil {
		return round, err
	}
	defer p.Stop()
	hc := LoopbackHTTPClient(sessions * 2)
	client := NewClient(nil)
	css := make([]*sdk.ClientSession, sessions)
	for i := range css {
		if css[i], err = ConnectHTTP(ctx, client, p.MCPURL(), hc); err != nil {
			closeAll(css)
			return round, err
		}
	}
	defer closeAll(css)
	cpu0, err := CPUTime(p.Cmd.Process.Pid)
	if err != nil {
		return round, err
	}
	if profile != "" {
		if err := startProfile(ctx, p, profile); err != nil {
			return round, err
		}
	}
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, cs := range css {
		wg.Go(func() {
			if err := followUps(ctx, cs, i, perSession); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	round.Wall = time.Since(start)
	if profile != "" {
		stopProfile(ctx, p)
		if err := saveAllocsProfile(ctx, p, profile+".allocs"); err != nil {
			return round, err
		}
		// What stays live once every call has returned (after a GC):
		// anything here that grows with the number of calls is kept per call.
		if err := savePprof(ctx, p, "heap?gc=1", profile+".heap"); err != nil {
			return round, err
		}
	}
	if len(errs) > 0 {
		return round, errs[0]
	}
	cpu1, err := CPUTime(p.Cmd.Process.Pid)
	if err != nil {
		return round, err
	}
	round.CPUPerCall = (cpu1 - cpu0) / time.Duration(sessions*perSession)
	mem, err := ReadMemory(p.Cmd.Process.Pid)
	if err != nil {
		return round, err
	}
	round.PeakRSS = mem.HWM
	return round, nil
}

// followUps makes one session's calls, with a progress token, and checks
// every answer byte for byte.
func followUps(ctx context.Context, cs *sdk.ClientSession, session, calls int) error {
	conv := ""
	for j := range calls {
		args := map[string]any{"question": fakebackend.DiagnosticQuestion}
		if conv != "" {
			args["conversation_id"] = conv
		}
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: args}
		p.SetProgressToken(fmt.Sprintf("cpu-%d-%d", session, j))
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := cs.CallTool(cctx, p)
		cancel()
		if err != nil {
			return fmt.Errorf("session %d call %d: %w", session, j, err)
		}
		var out struct {
			Answer         string `json:"answer"`
			ConversationID string `json:"conversation_id"`
		}
		raw, _ := json.Marshal(res.StructuredContent)
		if res.IsError || json.Unmarshal(raw, &out) != nil || out.Answer != fakebackend.DiagnosticAnswer {
			return fmt.Errorf("session %d call %d: not the diagnostic answer: %s", session, j, raw)
		}
		conv = out.ConversationID
	}
	return nil
}

type counts struct{ chat, replay int }

func (c counts) plus(d counts) counts  { return counts{c.chat + d.chat, c.replay + d.replay} }
func (c counts) minus(d counts) counts { return counts{c.chat - d.chat, c.replay - d.replay} }

// backendCounts reads the fake's request log (GET /_log).
func backendCounts(url string) (counts, error) {
	var c counts
	resp, err := http.Get(url + "/_log")
	if err != nil {
		return c, fmt.Errorf("backend log: %w", err)
	}
	defer resp.Body.Close()
	var log []fakebackend.LogEntry
	if err := json.NewDecoder(resp.Body).Decode(&log); err != nil {
		return c, fmt.Errorf("backend log: %w", err)
	}
	for _, e := range log {
		switch {
		case e.Method == http.MethodPost && e.Path == "/v1/chat/completions":
			c.chat++
		case strings.HasPrefix(e.Path, "/v1/events/replay/"):
			c.replay++
		}
	}
	return c, nil
}
