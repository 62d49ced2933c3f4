package main

import (
	"context"
	"errors"
	"log/slog"
)

type demoBackend struct{ URL string }

func (d *demoBackend) Close() {}

func startDemoBackend(ctx context.Context, log *slog.Logger) (*demoBackend, error) {
	return nil, errors.New("demo mode is not built yet")
}
