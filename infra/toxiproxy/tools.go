//go:build tools

// Package tools pins Toxiproxy's server (and its CLI) in this build module, so that
// `go build github.com/Shopify/toxiproxy/v2/cmd/server` builds the version in go.mod.
package tools

import (
	_ "github.com/Shopify/toxiproxy/v2/cmd/cli"
	_ "github.com/Shopify/toxiproxy/v2/cmd/server"
)
