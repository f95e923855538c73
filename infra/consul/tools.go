//go:build tools

// Package tools pins the two programs this module builds. It is never compiled; the blank
// imports only keep `go mod tidy` from dropping the requirements below.
package tools

import (
	_ "github.com/hashicorp/consul"
	_ "github.com/hashicorp/consul-template"
)
