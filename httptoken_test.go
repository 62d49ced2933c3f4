package main

import "net/http"

// httpClientWithToken adds a bearer token to every request.
type httpClientWithToken struct{ token string }

func (h *httpClientWithToken) client() *http.Client {
	return &http.Client{Transport: tokenTransport{h.token}}
}

type tokenTransport struct{ token string }

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return http.DefaultTransport.RoundTrip(r)
}
