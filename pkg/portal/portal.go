// Package portal serves the demo portal: static files embedded in the
// binary, no build step. It talks to the gateway only through the public
// protocol (centrifuge-js over /connection/websocket) and HTTP endpoints, as
// a customer's portal would.
package portal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the portal's files at the root.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}
