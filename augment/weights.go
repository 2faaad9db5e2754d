package augment

// ClassWeights returns the "auto" (balanced) class weights of samples:
// weight_c = n / (k × count_c), where n is the number of samples, k is
// numClasses and count_c the number of samples of class c. A perfectly
// balanced dataset gets 1 for every class, and the weighted loss gives every
// class the same total weight.
//
// A class with no samples gets weight 0 rather than +Inf: it contributes
// nothing to the loss either way, and an infinity would poison the graph's
// arithmetic. Samples whose label is outside [0, numClasses) are not
// counted. numClasses <= 0 returns nil.
func ClassWeights(samples []Sample, numClasses int) []float32 {
	if numClasses <= 0 {
		return nil
	}
	counts := make([]int, numClasses)
	n := 0
	for _, s := range samples {
		if s.Label >= 0 && s.Label < numClasses {
			counts[s.Label]++
			n++
		}
	}
	weights := make([]float32, numClasses)
	for c, count := range counts {
		if count > 0 {
			weights[c] = float32(float64(n) / (float64(numClasses) * float64(count)))
		}
	}
	return weights
}
