package gateway

import (
	"encoding/base64"
	"errors"
)

func asError[T error](err error, target *T) bool { return errors.As(err, target) }

func base64URL(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
