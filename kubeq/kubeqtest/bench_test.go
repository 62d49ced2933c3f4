package kubeqtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkTurn measures whole turns over loopback: a preamble, two tool
// events and a 2 KB answer (about 130 content frames).
func BenchmarkTurn(b *testing.B) {
	srv := NewServer()
	defer srv.Close()
	srv.Handle("q", append(Preamble(), ToolCall("run_kubectl", "kubectl get pods"), ToolResult("run_kubectl", "ok"),
		Tokens(strings.Repeat("answer words ", 160))))
	client := srv.Client()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+chatPath, strings.NewReader(kubeqBody("q")))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkPyJSON measures the encoder on a typical content chunk.
func BenchmarkPyJSON(b *testing.B) {
	v := Obj{{"id", "chatcmpl-5e0c2a91b7d3"}, {"object", "chat.completion.chunk"}, {"created", 1767225600}, {"model", "kubeintellect"},
		{"choices", []Obj{{{"index", 0}, {"delta", Obj{{"content", "the pod — restarts "}, {"role", "assistant"}}}, {"finish_reason", nil}}}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = PyJSON(v)
	}
}
