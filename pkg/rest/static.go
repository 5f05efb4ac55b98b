package rest

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Files serves static files below root, libmtev's
// mtev_rest_simple_file_handler: the route's first capture is the path
// below root; a path ending in '/' serves index (default "index.html").
// mimeTypes maps extensions (without the dot) to content types before the
// built-in table. Files are served with http.ServeContent (ranges,
// If-Modified-Since, ETag from size and time). Nothing outside root is
// ever served: the path is cleaned, and symbolic links are resolved and
// must stay below the resolved root. EACCES answers 403, anything else
// 404.
//
// An empty root serves the document_root (index_file, mime_type_<ext>)
// of the listener's <config> the request came in on, as libmtev does;
// 404 when it has none.
func Files(root, index string, mimeTypes map[string]string) (http.Handler, error) {
	if index == "" {
		index = "index.html"
	}
	if root == "" {
		return http.HandlerFunc(listenerFiles), nil
	}
	f, err := newFiles(root, index, mimeTypes)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func listenerFiles(w http.ResponseWriter, r *http.Request) {
	x := FromRequest(r)
	var cfg map[string]string
	if x != nil {
		cfg = x.Listener
	}
	root := cfg["document_root"]
	if root == "" {
		Error(w, http.StatusNotFound, "not found")
		return
	}
	mt := map[string]string{}
	for k, v := range cfg {
		if ext, ok := strings.CutPrefix(k, "mime_type_"); ok {
			mt[ext] = v
		}
	}
	f, err := newFiles(root, cfg["index_file"], mt)
	if err != nil {
		Error(w, http.StatusNotFound, "not found")
		return
	}
	f.ServeHTTP(w, r)
}

func newFiles(root, index string, mimeTypes map[string]string) (*files, error) {
	if index == "" {
		index = "index.html"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, errors.New("rest: document_root " + root + " is not a directory")
	}
	return &files{root: real, index: index, mime: mimeTypes}, nil
}

type files struct {
	root, index string
	mime        map[string]string
}

func (f *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caps := Captures(r)
	rel := r.URL.Path
	if len(caps) > 0 {
		rel = caps[0]
	}
	if strings.HasSuffix(rel, "/") || rel == "" {
		rel += f.index
	}
	if strings.Contains(rel, "\x00") {
		Error(w, http.StatusNotFound, "not found")
		return
	}
	clean := path.Clean("/" + rel)
	full := filepath.Join(f.root, filepath.FromSlash(clean))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		f.fail(w, err)
		return
	}
	if real != f.root && !strings.HasPrefix(real, f.root+string(filepath.Separator)) {
		Error(w, http.StatusNotFound, "not found")
		return
	}
	fh, err := os.Open(real)
	if err != nil {
		f.fail(w, err)
		return
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil || st.IsDir() {
		Error(w, http.StatusNotFound, "not found")
		return
	}
	ext := strings.TrimPrefix(filepath.Ext(real), ".")
	if ct, ok := f.mime[ext]; ok {
		w.Header().Set("Content-Type", ct)
	} else if ct := mime.TypeByExtension("." + ext); ct != "" && ext != "" {
		w.Header().Set("Content-Type", ct)
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	http.ServeContent(w, r, st.Name(), st.ModTime(), fh)
}

func (f *files) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		Error(w, http.StatusForbidden, "forbidden")
		return
	}
	Error(w, http.StatusNotFound, "not found")
}
