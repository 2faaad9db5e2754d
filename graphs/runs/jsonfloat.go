package runs

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// jsonFloat is a float64 that JSON-encodes NaN and ±Inf as the strings
// "NaN", "+Inf" and "-Inf" (the package's one policy for non-finite
// numbers) and decodes both those strings and plain numbers.
type jsonFloat float64

// MarshalJSON writes m as a number, or as a string when it is not finite.
func (m jsonFloat) MarshalJSON() ([]byte, error) {
	f := float64(m)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads a number or one of the strings MarshalJSON writes.
func (m *jsonFloat) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		f, err := strconv.ParseFloat(s, 64) // accepts NaN, +Inf, -Inf
		if err != nil {
			return fmt.Errorf("metric %q is not a number", s)
		}
		*m = jsonFloat(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*m = jsonFloat(f)
	return nil
}
