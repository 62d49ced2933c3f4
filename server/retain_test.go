package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// A session that stays open does not keep the requests of its finished
// calls. mcp-go v1.6.0 keeps a 2025-era POST's resumable stream, with the
// response writer it was given, until the session ends; the writer it gets
// from us must not hold the real response (and through it the request, its
// headers and body) past the call.
func TestOpenSessionKeepsNoFinishedCall(t *testing.T) {
	f := newFixture(t, nil)
	var (
		mu   sync.Mutex
		seen []weak.Pointer[http.Request]
	)
	h := f.srv.HTTPHandler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			seen = append(seen, weak.Make(r))
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	client := sdk.NewClient(&sdk.Implementation{Name: "retain-test", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: hs.URL + MCPPath, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err)
	defer cs.Close()

	const calls = 5
	for i := range calls {
		res := call(t, cs, map[string]any{"question": "how are the pods?"})
		require.False(t, res.IsError, textOf(res))
		require.NotEmpty(t, structured(t, res)["answer"], "call %d", i)
	}
	mu.Lock()
	posts := append([]weak.Pointer[http.Request](nil), seen...)
	mu.Unlock()
	require.Greater(t, len(posts), calls, "initialize, initialized and the calls were all POSTs")

	// net/http lets go of a request once its response is finished, which
	// can be a moment after the client read the result.
	live := func() int {
		runtime.GC()
		n := 0
		for _, p := range posts {
			if p.Value() != nil {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	n := live()
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = live()
	}
	require.Zerof(t, n, "%d of %d POST requests still reachable with the session open", n, len(posts))
}

// plainWriter is a ResponseWriter that cannot flush.
type plainWriter struct{ h http.Header }

func (p *plainWriter) Header() http.Header         { return p.h }
func (p *plainWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *plainWriter) WriteHeader(int)             {}

// The writer handed on flushes exactly when the real one does (mcp-go
// streams only to one that does), and refuses writes once its handler
// has returned.
func TestReleaseOnReturnKeepsFlushingHonestAndEnds(t *testing.T) {
	for _, c := range []struct {
		name  string
		w     http.ResponseWriter
		flush bool
	}{
		{"flusher", httptest.NewRecorder(), true},
		{"plain", &plainWriter{h: http.Header{}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var kept http.ResponseWriter
			releaseOnReturn(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, canFlush := w.(http.Flusher)
				require.Equal(t, c.flush, canFlush)
				_, err := w.Write([]byte("during"))
				require.NoError(t, err)
				kept = w
			})).ServeHTTP(c.w, httptest.NewRequest(http.MethodPost, "/mcp", nil))
			_, err := kept.Write([]byte("after"))
			require.ErrorIs(t, err, errResponseEnded)
			if f, ok := kept.(interface{ FlushError() error }); ok {
				require.ErrorIs(t, f.FlushError(), errResponseEnded)
			}
			if rec, ok := c.w.(*httptest.ResponseRecorder); ok {
				require.Equal(t, "during", rec.Body.String())
			}
		})
	}
}
