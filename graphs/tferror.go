package graphs

import (
	"regexp"
	"strings"
)

// tfOOMHint matches the advice TensorFlow appends to every error of a
// session run that failed for lack of a resource ("Hint: If you want to see
// a list of allocated tensors when OOM happens, add
// report_tensor_allocations_upon_oom to RunOptions …"). It is about GPU
// memory and a Python API: shown after a full disk, it only misleads.
var tfOOMHint = regexp.MustCompile(`(?s)\s*Hint: If you want to see a list of allocated tensors when OOM happens.*?(?:Eager mode\.|$)`)

// StripTFHint returns err with TensorFlow's OOM hint removed from its
// message; errors.Is and errors.As still see err's chain. Errors without
// the hint come back unchanged.
func StripTFHint(err error) error {
	if err == nil || !tfOOMHint.MatchString(err.Error()) {
		return err
	}
	msg := strings.TrimRight(tfOOMHint.ReplaceAllString(err.Error(), ""), " \t\n")
	return &strippedError{msg: msg, err: err}
}

// strippedError is an error shown with another message.
type strippedError struct {
	msg string
	err error
}

func (e *strippedError) Error() string { return e.msg }
func (e *strippedError) Unwrap() error { return e.err }
