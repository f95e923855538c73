// Command compose-check loads a compose file the way `docker compose` does (the same
// compose-spec loader: schema validation, `.env` interpolation, normalization and
// consistency checks) and prints the resulting project as JSON. It lets the test
// suite check docker-compose.yml on machines that have no Docker engine.
//
// Usage: compose-check [-env-file FILE] [-profile NAME,...] COMPOSE_FILE
//
// Services under a profile are left out, as `docker compose` leaves them out, unless
// -profile names it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "env file to interpolate from (default: .env beside the compose file)")
	profiles := flag.String("profile", "", "comma-separated profiles to enable, as docker compose --profile")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env-file FILE] [-profile NAME,...] COMPOSE_FILE")
		os.Exit(2)
	}
	var enabled []string
	if *profiles != "" {
		enabled = strings.Split(*profiles, ",")
	}
	if err := run(flag.Arg(0), *envFile, enabled); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
		os.Exit(1)
	}
}

func run(composeFile, envFile string, profiles []string) error {
	path, err := filepath.Abs(composeFile)
	if err != nil {
		return err
	}
	var envFiles []string
	if envFile != "" {
		envFiles = append(envFiles, envFile)
	}
	// Same option order as the docker compose CLI, so the process environment
	// overrides .env exactly as it does there.
	options, err := cli.NewProjectOptions(
		[]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}
