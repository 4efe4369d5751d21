package events

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaDir is the directory of the schemas inside Schemas().
const SchemaDir = "schemas"

// SchemaBaseURL is the base of every schema's $id. Schemas refer to each
// other by relative paths (envelope.json, data/deployment.json), so a copy
// of the directory validates offline; nothing is fetched from this host.
const SchemaBaseURL = "https://schemas.pulse.example/events/"

//go:embed schemas
var schemaFiles embed.FS

// Schemas is the read-only tree of JSON Schemas (draft 2020-12): one
// schemas/<type>.json per event type (the whole envelope with type and data
// pinned), schemas/envelope.json and the data schemas in schemas/data/.
func Schemas() fs.FS { return schemaFiles }

// ErrInvalid wraps every validation failure of Validator.Validate.
var ErrInvalid = errors.New("event does not match its schema")

// Validator checks encoded events against the schema of their type. It is
// safe for concurrent use.
type Validator struct {
	byType map[string]*jsonschema.Schema
}

// NewValidator compiles the embedded schemas. Formats (date-time, uri) are
// asserted, and no schema is ever fetched from the network.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(offlineLoader{})
	err := fs.WalkDir(schemaFiles, SchemaDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFiles.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schema %s: %w", path, err)
		}
		return c.AddResource(SchemaBaseURL+strings.TrimPrefix(path, SchemaDir+"/"), doc)
	})
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	v := &Validator{byType: make(map[string]*jsonschema.Schema, len(catalogue))}
	for typ := range catalogue {
		s, err := c.Compile(SchemaBaseURL + typ + ".json")
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", typ, err)
		}
		v.byType[typ] = s
	}
	return v, nil
}

// Validate checks one encoded event (the JSON a worker publishes) against
// the schema of the type it names.
func (v *Validator) Validate(event []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %w", ErrInvalid, err)
	}
	obj, _ := inst.(map[string]any)
	typ, _ := obj["type"].(string)
	s, ok := v.byType[typ]
	if !ok {
		return fmt.Errorf("%w: %w: %q", ErrInvalid, ErrUnknownType, typ)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, typ, err)
	}
	return nil
}

// offlineLoader refuses every URL: all schemas are added as resources up
// front, so a $ref that reaches the loader is a mistake in a schema.
type offlineLoader struct{}

func (offlineLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded (schemas are never fetched)", url)
}
