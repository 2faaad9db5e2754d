package runs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// CheckpointState is what a checkpoint records besides the variables.
type CheckpointState struct {
	Epoch   int                `json:"epoch"`   // epochs completed
	Step    int64              `json:"step"`    // optimizer steps completed
	Metrics map[string]float64 `json:"metrics"` // e.g. val_acc; NaN and ±Inf survive the round trip
	Time    time.Time          `json:"time"`
	Seed    int64              `json:"seed"`
	// Loop is the training loop's full position (best epoch, early-stopping
	// counter, a partial epoch's sums), when the writer records it.
	Loop *LoopState `json:"loop,omitempty"`
}

// MarshalJSON writes non-finite metrics and Loop figures as the strings
// "NaN", "+Inf" and "-Inf": a diverged run must still be able to write its
// checkpoint, and JSON has no such numbers.
func (st CheckpointState) MarshalJSON() ([]byte, error) {
	type plain CheckpointState
	aux := struct {
		plain
		Metrics map[string]jsonFloat `json:"metrics"`
		Loop    json.RawMessage      `json:"loop,omitempty"`
	}{plain: plain(st)}
	if st.Metrics != nil {
		aux.Metrics = make(map[string]jsonFloat, len(st.Metrics))
		for k, v := range st.Metrics {
			aux.Metrics[k] = jsonFloat(v)
		}
	}
	if st.Loop != nil {
		var err error
		if aux.Loop, err = marshalFloatSafe(st.Loop); err != nil {
			return nil, fmt.Errorf("checkpoint loop state: %w", err)
		}
	}
	return json.Marshal(aux)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (st *CheckpointState) UnmarshalJSON(data []byte) error {
	type plain CheckpointState
	aux := struct {
		*plain
		Metrics map[string]jsonFloat `json:"metrics"`
		Loop    json.RawMessage      `json:"loop"`
	}{plain: (*plain)(st)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	st.Metrics = nil
	if aux.Metrics != nil {
		st.Metrics = make(map[string]float64, len(aux.Metrics))
		for k, v := range aux.Metrics {
			st.Metrics[k] = float64(v)
		}
	}
	st.Loop = nil
	if len(aux.Loop) > 0 && string(aux.Loop) != "null" {
		st.Loop = new(LoopState)
		if err := unmarshalFloatSafe(aux.Loop, st.Loop); err != nil {
			return fmt.Errorf("checkpoint loop state: %w", err)
		}
	}
	return nil
}

// marshalFloatSafe encodes the struct *ptr as a JSON object like
// encoding/json (json tag names honoured, "-" skipped), except that its
// float64 fields may be NaN or infinite. It is generic so that fields added
// to LoopState need no change here.
func marshalFloatSafe(ptr any) (json.RawMessage, error) {
	v := reflect.ValueOf(ptr).Elem()
	obj := map[string]any{}
	for i := 0; i < v.NumField(); i++ {
		name, ok := jsonFieldName(v.Type().Field(i))
		if !ok {
			continue
		}
		if f := v.Field(i); f.Kind() == reflect.Float64 {
			obj[name] = jsonFloat(f.Float())
		} else {
			obj[name] = f.Interface()
		}
	}
	return json.Marshal(obj)
}

// unmarshalFloatSafe decodes what marshalFloatSafe encodes into *ptr;
// fields absent from data keep their value.
func unmarshalFloatSafe(data []byte, ptr any) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	v := reflect.ValueOf(ptr).Elem()
	for i := 0; i < v.NumField(); i++ {
		name, ok := jsonFieldName(v.Type().Field(i))
		raw, present := obj[name]
		if !ok || !present {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Float64 {
			var m jsonFloat
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			f.SetFloat(float64(m))
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// jsonFieldName is the key encoding/json gives a struct field, and whether
// it encodes the field at all.
func jsonFieldName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return name, true
}
