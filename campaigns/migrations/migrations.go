// Package migrations holds Rapport's versioned schema, one folder of goose
// SQL files per dialect, embedded so the binary carries its own schema.
// Every change is a new numbered file in both folders.
package migrations

import "embed"

//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
