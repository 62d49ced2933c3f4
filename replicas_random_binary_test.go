package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// A randomized run across 3 replicas sharing one Redis: random routing per
// request (2025-era sessions stick to the replica that holds them, as they
// must), random human answers, new questions interleaved on a conversation
// while its gate waits, and one replica stopped and restarted mid-run.
// KUBEQ_REPLICA_SEED replays a run; the seed differs per run otherwise.
func TestReplicasRandomGates(t *testing.T) {
	if testing.Short() {
		testskip.Skip(t, "a thousand gates through three processes: skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("KUBEQ_REPLICA_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "KUBEQ_REPLICA_SEED")
		seed = n
	}
	t.Logf("seed %d (KUBEQ_REPLICA_SEED=%d replays this run)", seed, seed)
	const (
		want            = 1000
		modernWorkers   = 6
		legacyWorkers   = 2
		approvalTimeout = 3 * time.Second
	)
	var rmu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	randN := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return r.IntN(n) }

	srv := redistest.Start(t)
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(50 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.HandleFunc(func(req kubeqtest.Request) kubeqtest.Script {
		id, ok := strings.CutPrefix(req.Question, "gate ")
		if !ok {
			return kubeqtest.Answer("nothing to do.")
		}
		g := kubeqtest.Gate{ActionID: id, OnApprove: kubeqtest.Script{kubeqtest.Tokens("ran " + id)},
			OnDeny: kubeqtest.Script{kubeqtest.Tokens("left " + id)}}
		if strings.HasSuffix(id, "h") {
			g.Command, g.Risk = "kubectl delete pod "+id+" -n shop", "high"
		} else {
			g.Command, g.Risk = "kubectl scale deployment "+id+" --replicas=2 -n shop", "medium"
		}
		return kubeqtest.Script{g}
	})
	rs := startReplicas(t, 3, backend, srv.URL(0), "--approval-timeout", approvalTimeout.String())
	rs.pick = randN
	sticky := newStickyProxy(rs) // 2025-era sessions
	t.Cleanup(sticky.Close)

	var (
		mu       sync.Mutex
		humanOK  = map[string]bool{} // gates a human approved while pending, answer delivered
		unsure   = map[string]bool{} // gates whose answer met a stopping replica
		planned  atomic.Int64
		raised   atomic.Int64 // gates the clients saw raised
		answered atomic.Int64
		errs     atomic.Int64
	)
	logErr := func(what string, err error) {
		if errs.Add(1) <= 5 {
			t.Logf("%s: %v", what, err)
		}
	}
	behaviours := []string{"approve", "approve", "wrong", "deny", "decline", "interleave", "ignore"}
	gateName := func(w, n int) string {
		suffix := "m"
		if randN(2) == 0 {
			suffix = "h"
		}
		return fmt.Sprintf("w%d-%d-%s", w, n, suffix)
	}
	enough := func() bool { return raised.Load() >= want }

	// 2026 era: every request to a random replica.
	modern := func(w int) {
		cs := rs.client()
		conv := fmt.Sprintf("conv-%d-%d", w, seed%100000)
		for n := 0; !enough(); n++ {
			id := gateName(w, n)
			planned.Add(1)
			args := map[string]any{"question": "gate " + id, "conversation_id": conv}
			res, err := ask(cs, args)
			if err == nil && res.NeedsInput() {
				raised.Add(1)
			}
			if err != nil || !res.NeedsInput() {
				if err == nil {
					err = fmt.Errorf("%s", demoText(res))
				}
				logErr("question "+id, err)
				if res == nil { // the client's connection died with a stopping replica: a new one
					_ = cs.Close()
					cs = rs.client()
				}
				mu.Lock()
				unsure[id] = true // a replica was stopping: its fate is checked in the safe direction only
				mu.Unlock()
				continue
			}
			does := behaviours[randN(len(behaviours))]
			content := approveWithName(id)
			action := "accept"
			switch does {
			case "wrong":
				content = approveWithName(id + "-typo")
			case "deny":
				content = map[string]any{"decision": "deny"}
			case "decline":
				action = "decline"
			case "interleave":
				if _, err := ask(cs, map[string]any{"question": "status?", "conversation_id": conv}); err != nil {
					mu.Lock()
					unsure[id] = true
					mu.Unlock()
				}
			case "ignore":
				continue // denied before the next question, or by a sweeper
			}
			res, err = answer(cs, args, res.RequestState, content, action)
			answered.Add(1)
			if err != nil {
				logErr("answer "+id, err)
				_ = cs.Close()
				cs = rs.client()
			}
			mu.Lock()
			switch {
			case err != nil || (res.IsError && does == "approve"):
				unsure[id] = true
			case does == "approve" || (does == "wrong" && strings.HasSuffix(id, "m")):
				humanOK[id] = true
			}
			mu.Unlock()
		}
	}
	// 2025 era: a session sticks to one replica; the form is answered
	// inside the call.
	legacy := func(w int) {
		var plan sync.Map
		connect := func() *sdk.ClientSession {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cs, err := sdk.NewClient(&sdk.Implementation{Name: "replica-legacy", Version: "1"}, &sdk.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
					m := binApprovalID.FindStringSubmatch(req.Params.Message)
					if m == nil {
						return nil, fmt.Errorf("no approval id")
					}
					v, _ := plan.Load(m[1])
					switch v {
					case "approve":
						return &sdk.ElicitResult{Action: "accept", Content: approveWithName(m[1])}, nil
					case "wrong":
						return &sdk.ElicitResult{Action: "accept", Content: approveWithName(m[1] + "-typo")}, nil
					case "deny":
						return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "deny"}}, nil
					}
					return &sdk.ElicitResult{Action: "decline"}, nil
				}}).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: sticky.URL + "/mcp", MaxRetries: -1},
				&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err != nil {
				return nil
			}
			return cs
		}
		cs := connect()
		conv := fmt.Sprintf("legacy-%d-%d", w, seed%100000)
		for n := 0; !enough(); n++ {
			id := gateName(w, n)
			planned.Add(1)
			does := []string{"approve", "wrong", "deny", "decline"}[randN(4)]
			plan.Store(id, does)
			if cs == nil {
				cs = connect()
			}
			var res *sdk.CallToolResult
			var err error = fmt.Errorf("not connected")
			if cs != nil {
				res, err = ask(cs, map[string]any{"question": "gate " + id, "conversation_id": conv})
			}
			if err == nil && !res.IsError {
				raised.Add(1)
			} else if err != nil {
				logErr("2025 question "+id, err)
			}
			mu.Lock()
			switch {
			case err != nil || res.IsError:
				unsure[id] = true
			case does == "approve" || (does == "wrong" && strings.HasSuffix(id, "m")):
				humanOK[id] = true
			}
			mu.Unlock()
			if err != nil && cs != nil {
				_ = cs.Close()
				cs = nil // its replica stopped: a new session
				time.Sleep(10 * time.Millisecond)
			}
		}
		if cs != nil {
			_ = cs.Close()
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for w := range modernWorkers + legacyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w < modernWorkers {
				modern(w)
			} else {
				legacy(w)
			}
		}()
	}
	// One replica stopped and restarted mid-run.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		for raised.Load() < want/2 {
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("stopping replica 1 after %d planned gates, %v into the run", planned.Load(), time.Since(start).Round(time.Millisecond))
		rs.stop(1)
		rs.start(1)
		t.Logf("replica 1 is back, %v into the run", time.Since(start).Round(time.Millisecond))
	}()
	wg.Wait()
	<-restarted
	elapsed := time.Since(start)

	// Every gate still open is denied by a sweeper once its time is up.
	convs := map[string]bool{}
	for _, req := range backend.ChatRequests() {
		convs[req.Session] = true
	}
	openAtEnd := 0
	for c := range convs {
		if _, pending := backend.PendingGate(c); pending {
			openAtEnd++
		}
	}
	require.Eventually(t, func() bool {
		for c := range convs {
			if _, pending := backend.PendingGate(c); pending {
				return false
			}
		}
		return true
	}, 4*approvalTimeout+30*time.Second, 100*time.Millisecond, "gates left pending after the approval timeout")

	decisions := backend.Decisions()
	approvals := 0
	seen := map[string]bool{}
	for _, d := range decisions {
		assert.Falsef(t, seen[d.ActionID], "gate %s decided twice", d.ActionID)
		seen[d.ActionID] = true
		mu.Lock()
		ok, maybe := humanOK[d.ActionID], unsure[d.ActionID]
		mu.Unlock()
		if d.Approved {
			approvals++
			assert.Truef(t, ok || maybe, "gate %s approved, but no human approved it while pending", d.ActionID)
			assert.Falsef(t, d.Auto, "gate %s auto-approved", d.ActionID)
		}
	}
	mu.Lock()
	missed := 0
	for id := range humanOK {
		if !unsure[id] && !approvedIn(decisions, id) {
			missed++
			t.Errorf("gate %s: the human approved it while pending, and the backend never got approve", id)
		}
	}
	mu.Unlock()
	stray := strays(backend)
	for _, s := range stray {
		t.Errorf("stray %q on %s: no gate was pending", s.Message, s.Session)
	}
	assert.Equal(t, approvals, backend.Received("approve"), "every approve answered a gate")
	assert.Empty(t, backend.ConcurrentTurnViolations(), "one turn at a time per conversation, across replicas")
	t.Logf("%d gates raised (%d planned, %d answered through the proxy) in %v: %d approved, %d stray messages, "+
		"%d gates open when the clients stopped and 0 left pending after the approval timeout, "+
		"%d gates whose answer met the stopping replica (checked one way)",
		len(decisions), planned.Load(), answered.Load(), elapsed.Round(time.Millisecond), approvals, len(stray), openAtEnd, len(unsure))
	require.GreaterOrEqual(t, len(decisions), want, "at least %d gates", want)
	assert.Zero(t, missed)
}

func approvedIn(ds []kubeqtest.Decision, id string) bool {
	for _, d := range ds {
		if d.ActionID == id && d.Approved {
			return true
		}
	}
	return false
}

// newStickyProxy proxies to rs's replicas, sending each 2025-era session
// to the replica that created it (a random live one), as a load balancer
// with session affinity does.
func newStickyProxy(rs *replicaSet) *httptest.Server {
	var mu sync.Mutex
	sessions := map[string]int{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.Header.Get("Mcp-Session-Id")
		rs.mu.Lock()
		if len(rs.live) == 0 {
			rs.mu.Unlock()
			http.Error(w, "no replica in rotation", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		i, ok := sessions[sid]
		mu.Unlock()
		if !ok {
			i = rs.live[rs.pick(len(rs.live))]
		}
		target := rs.reps[i].target
		rs.mu.Unlock()
		p := httputil.NewSingleHostReverseProxy(target)
		p.FlushInterval = -1
		p.ModifyResponse = func(resp *http.Response) error {
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				mu.Lock()
				sessions[id] = i
				mu.Unlock()
			}
			return nil
		}
		p.ServeHTTP(w, r)
	}))
}
