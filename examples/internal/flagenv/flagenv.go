// Package flagenv lets the example services take every flag from the
// environment too, as a container or a systemd unit passes settings.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Set sets every flag of fs not given on the command line from its
// PREFIX_<FLAG> environment variable, if set: flag "redis-addr" with prefix
// "CHAT" reads CHAT_REDIS_ADDR. Call it after fs.Parse. A value the flag
// rejects is an error naming the variable and the value.
func Set(fs *flag.FlagSet, prefix string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !given[f.Name] && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}
