package builtin

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed web
var webFS embed.FS

// web is the dashboard's files: index.html and ui/*.
var web, _ = fs.Sub(webFS, "web")

// dashboard serves the operational dashboard: index.html at "/" and
// "/mtev/", its scripts and styles under /mtev/ui/. It reads the JSON
// endpoints only; everything it needs is embedded.
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	name := "index.html"
	if i := strings.Index(r.URL.Path, "/mtev/ui/"); i >= 0 {
		name = "ui/" + r.URL.Path[i+len("/mtev/ui/"):]
	}
	if strings.Contains(name, "..") {
		jsonError(w, http.StatusNotFound, "no such file")
		return
	}
	if _, err := fs.Stat(web, name); err != nil {
		jsonError(w, http.StatusNotFound, "dashboard: %s: no such file", name)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, web, name)
}
