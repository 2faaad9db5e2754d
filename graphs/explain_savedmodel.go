package graphs

import "fmt"

// newSavedModelExplainer explains with a SavedModel's explain signature.
// Exports do not carry one yet, so a SavedModel cannot be explained.
func newSavedModelExplainer(s *Servable, layer string) (*Explainer, error) {
	return nil, fmt.Errorf("SavedModel %s has no %q signature: %w", s.dir, SignatureExplain, ErrNoExplain)
}
