// Package augment is the data entry point of the trainer: it finds the
// images of a dataset on disk, decodes them into RGB, resizes them to the
// network's input size, augments them (horizontal flip, small rotation) and
// assembles them into float32 NHWC batches, in parallel and deterministically.
//
// The importers that write dataset folders from published downloads live in
// their own packages: augment/fmnist (Fashion-MNIST's IDX files) and
// augment/kfashion (AI Hub's K-Fashion download).
//
// The package is pure Go and never imports TensorFlow, so its tests run
// without cgo. Pixel values leave this package in the 0–255 range:
// normalisation happens inside the TensorFlow graph, so that training,
// evaluation, prediction and the exported model share one definition of it
// (see [Normalize] for the constants the graph builders use).
//
// The usual flow is
//
//	ds, err := augment.Open(dir, augment.OpenOptions{Classes: classes})
//	err = ds.CheckTraining()
//	train, err := ds.Split("train")
//	loader, err := augment.NewLoader(train, augment.LoaderConfig{Size: 150, BatchSize: 32, Shuffle: true, Augment: augment.ModeOnline, Seed: seed})
//	for b := range loader.Epoch(ctx, epoch) {
//		// feed b.Images (b.N × Size × Size × 3) and b.Labels to the graph
//		b.Release()
//	}
package augment
