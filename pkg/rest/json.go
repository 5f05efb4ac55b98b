package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteJSON answers with status and v encoded as JSON
// (Content-Type: application/json). A value that cannot be encoded
// answers 500 with an error document instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("rest: encode reply: %v", err)})
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Error answers with status and {"error": "<message>"}.
func Error(w http.ResponseWriter, status int, format string, args ...any) {
	WriteJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
