package kubeqtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Transport returns an http.RoundTripper that serves requests in-process
// with Handler, without any socket: streaming works (each flush reaches the
// reader), closing the response body or cancelling the request cancels the
// turn, and a dropped connection becomes a RoundTrip or read error.
func (s *Server) Transport() http.RoundTripper { return inProcess{s} }

type inProcess struct{ s *Server }

var errDropped = errors.New("kubeqtest: connection dropped by the fake server")

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = req.URL.RequestURI()
	pr, pw := io.Pipe()
	rw := &pipeResponse{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	handlerDone := make(chan struct{})
	go func() {
		// A handler blocked writing to a reader that went away, or to a
		// server that closed, must not stay blocked.
		select {
		case <-ctx.Done():
			_ = pw.CloseWithError(ctx.Err())
		case <-t.s.done:
			_ = pw.CloseWithError(errDropped)
		case <-handlerDone:
		}
	}()
	go func() {
		defer close(handlerDone)
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					rw.abort(fmt.Errorf("kubeqtest: handler panic: %v", v))
					panic(v)
				}
				rw.abort(errDropped)
				return
			}
			rw.WriteHeader(http.StatusOK)
			_ = pw.Close()
		}()
		t.s.handler.ServeHTTP(rw, sreq)
	}()
	select {
	case <-rw.ready:
	case <-ctx.Done():
		cancel()
		_ = pr.Close()
		return nil, fmt.Errorf("kubeqtest: in-process request: %w", ctx.Err())
	}
	if rw.err != nil {
		cancel()
		return nil, fmt.Errorf("kubeqtest: in-process request: %w", rw.err)
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rw.code, http.StatusText(rw.code)), StatusCode: rw.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rw.sent, Body: &pipeBody{pr: pr, cancel: cancel}, ContentLength: -1, Request: req,
	}, nil
}

// pipeResponse is the handler's side: headers are handed over on the first
// WriteHeader, Write or Flush; the body goes through a pipe.
type pipeResponse struct {
	header http.Header
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	code   int
	sent   http.Header
	err    error // set before ready closes when the handler dropped the request
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(code int) {
	p.once.Do(func() {
		p.code, p.sent = code, p.header.Clone()
		close(p.ready)
	})
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

func (p *pipeResponse) Flush() { p.WriteHeader(http.StatusOK) }

func (p *pipeResponse) abort(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.ready)
	})
	_ = p.pw.CloseWithError(io.ErrUnexpectedEOF)
}

type pipeBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *pipeBody) Close() error {
	b.cancel()
	return b.pr.Close()
}
