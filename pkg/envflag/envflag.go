// Package envflag lets every Pulse command take each flag from an
// environment variable PULSE_<FLAG> (upper case, "-" → "_"). A flag on the
// command line wins over the environment, which wins over the default.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Name is the environment variable for a flag: "nats-url" → "PULSE_NATS_URL".
func Name(flagName string) string {
	return "PULSE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, refuses positional arguments (every Pulse
// command takes flags only), then fills the flags not given from PULSE_*
// variables with Apply.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags start with -)", fs.Args())
	}
	return Apply(fs, lookupEnv)
}

// Apply sets every flag of fs not given on the command line from its
// variable, looked up with lookupEnv (os.LookupEnv). Call it after fs.Parse.
// Errors name both the variable and the flag.
func Apply(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		key := Name(f.Name)
		v, ok := lookupEnv(key)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid value %q for -%s: %w", key, v, f.Name, err))
		}
	})
	return errors.Join(errs...)
}
