package sweep

// seedPresetPlan is the study's nine runs (spec: "Training recipes of the
// study"), all 100 epochs with the fixed doubling augmentation, as
// `train --recipe seed` does. It is a plan like any other, so that
// `sweep --preset seed` and a plan file behave the same.
const seedPresetPlan = `# The nine runs of the seed study.
defaults:
  recipe: seed
  epochs: 100
  augment: double
runs:
  - network: alexnet
    batch-size: 128
    optimizer: adam
    lr: 1e-4
    weight-decay: 1e-4
    dropout: [0.6, 0.8]
  - network: alexnet
    batch-size: 128
    optimizer: adam
    lr: 1e-4
    weight-decay: 1e-3
    dropout: 0.8
  - network: [vgg8, vgg10]
    batch-size: 128
    optimizer: adamw
    lr: 1e-4
    weight-decay: 0
  - network: googlenet
    batch-size: [32, 64]
    optimizer: adamw
    lr: 5e-5
    weight-decay: 5e-3
    dropout: 0.4
  - network: resnet34
    batch-size: 128
    optimizer: adam
    lr: 1e-4
    weight-decay: 1e-4
  - network: densenet
    batch-size: 64
    optimizer: adam
    lr: 1e-4
    weight-decay: 1e-4
`

// presets maps --preset names to their plans.
func presets() map[string]string {
	return map[string]string{"seed": seedPresetPlan}
}
