package app

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
)

// fashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the four gzipped IDX files.
const fashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// fashionMNISTClasses are the class folder names of Fashion-MNIST's labels 0–9.
var fashionMNISTClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat",
	"sandal", "shirt", "sneaker", "bag", "ankle-boot"}

const fashionMNISTHint = "install it with `apt-get install dataset-fashion-mnist`, or download the four upstream .gz files and pass --src"

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "prepare and inspect dataset folders",
		Subcommands: []*cli.Command{
			fashionMNISTCommand(),
			statsCommand(),
			importKFashionCommand(),
		},
	}
}

func fashionMNISTCommand() *cli.Command {
	return &cli.Command{
		Name:  "fashion-mnist",
		Usage: "convert Fashion-MNIST's IDX files into a folder of PNGs",
		Description: "Writes OUT/Train, OUT/Validation and OUT/Test, each with one folder per class of\n" +
			"28×28 gray PNGs named after the image's index in its IDX file. The training file is\n" +
			"split into Train and Validation by a shuffle seeded with --seed; t10k becomes Test.\n" +
			"Files are written into OUT/.tmp-* and moved into place at the end; OUT must be empty.\n\n" +
			"Classes (labels 0-9): " + strings.Join(fashionMNISTClasses, ", ") + ".\n\n" +
			"Examples:\n  kfash-tf data fashion-mnist --out data/fmnist\n" +
			"  kfash-tf data fashion-mnist --out data/shoes --classes sandal,sneaker,ankle-boot --train-limit 6000",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "src", Value: fashionMNISTDir, Usage: "folder of train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may be .gz)"},
			&cli.StringFlag{Name: "out", Usage: "output folder (must not exist or be empty)"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated classes to keep (default: all ten)"},
			&cli.Float64Flag{Name: "val-fraction", Value: 0.1, Usage: "fraction of the training images that go to Validation"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the train/validation shuffle"},
			&cli.IntFlag{Name: "train-limit", Value: 0, Usage: "use at most N images of the training file (after class selection, before the split; 0: all)"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "PNG encoding goroutines"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("unexpected argument %q", c.Args().First())
			}
			opts := fmnistOptions{
				Src: c.String("src"), Out: c.String("out"), ValFraction: c.Float64("val-fraction"),
				Seed: c.Int64("seed"), TrainLimit: c.Int("train-limit"), Workers: c.Int("workers"),
			}
			if s := strings.TrimSpace(c.String("classes")); s != "" {
				opts.Classes = strings.Split(s, ",")
			}
			sum, err := convertFashionMNIST(opts)
			if err != nil {
				return err
			}
			return printConvertSummary(out(c), opts.Out, sum)
		},
	}
}

type fmnistOptions struct {
	Src, Out    string
	Classes     []string
	ValFraction float64
	Seed        int64
	TrainLimit  int
	Workers     int
}

// convertSummary counts the images written, per split and class.
type convertSummary struct {
	Classes []string
	Splits  []string
	Counts  map[string][]int
}

// fmnistSplitDirs are the split folder names written, in order.
var fmnistSplitDirs = []string{"Train", "Validation", "Test"}

func convertFashionMNIST(o fmnistOptions) (*convertSummary, error) {
	if o.Out == "" {
		return nil, errors.New("--out is required")
	}
	if o.ValFraction < 0 || o.ValFraction >= 1 {
		return nil, fmt.Errorf("--val-fraction %g must be in [0, 1)", o.ValFraction)
	}
	if o.TrainLimit < 0 {
		return nil, fmt.Errorf("--train-limit %d must not be negative", o.TrainLimit)
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	classes, labelToClass, err := selectFashionClasses(o.Classes)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(o.Src); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("%s: no Fashion-MNIST folder: %s", o.Src, fashionMNISTHint)
	}
	paths := map[string]string{}
	for _, base := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		p, err := augment.FindIDX(o.Src, base)
		if err != nil {
			return nil, fmt.Errorf("%s: no %s or %s.gz: %s", o.Src, base, base, fashionMNISTHint)
		}
		paths[base] = p
	}
	if err := prepareOut(o.Out); err != nil {
		return nil, err
	}

	trainImgs, trainLabels, err := augment.ReadIDXPair(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"], len(fashionMNISTClasses))
	if err != nil {
		return nil, err
	}
	testImgs, testLabels, err := augment.ReadIDXPair(paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"], len(fashionMNISTClasses))
	if err != nil {
		return nil, err
	}

	// Train/validation: shuffle the selected training images, keep the
	// first --train-limit, and send the first val-fraction to Validation.
	var trainIdx []int
	for i, l := range trainLabels {
		if labelToClass[l] >= 0 {
			trainIdx = append(trainIdx, i)
		}
	}
	rng := rand.New(rand.NewSource(o.Seed))
	rng.Shuffle(len(trainIdx), func(i, j int) { trainIdx[i], trainIdx[j] = trainIdx[j], trainIdx[i] })
	if o.TrainLimit > 0 && o.TrainLimit < len(trainIdx) {
		trainIdx = trainIdx[:o.TrainLimit]
	}
	nVal := int(math.Round(o.ValFraction * float64(len(trainIdx))))
	var testIdx []int
	for i, l := range testLabels {
		if labelToClass[l] >= 0 {
			testIdx = append(testIdx, i)
		}
	}

	tmp, err := os.MkdirTemp(o.Out, ".tmp-fashion-mnist-")
	if err != nil {
		return nil, err
	}
	sum := &convertSummary{Classes: classes, Splits: fmnistSplitDirs, Counts: map[string][]int{}}
	jobs := []struct {
		split  string
		imgs   *augment.IDXImages
		labels []byte
		idx    []int
	}{
		{"Train", trainImgs, trainLabels, trainIdx[nVal:]},
		{"Validation", trainImgs, trainLabels, trainIdx[:nVal]},
		{"Test", testImgs, testLabels, testIdx},
	}
	for _, j := range jobs {
		counts := make([]int, len(classes))
		for _, class := range classes {
			if err := os.MkdirAll(filepath.Join(tmp, j.split, class), 0o755); err != nil {
				return nil, err
			}
		}
		for _, i := range j.idx {
			counts[labelToClass[j.labels[i]]]++
		}
		sum.Counts[j.split] = counts
		if err := writePNGs(tmp, j.split, j.imgs, j.labels, j.idx, classes, labelToClass, o.Workers); err != nil {
			return nil, err
		}
	}
	for _, split := range fmnistSplitDirs {
		if err := os.Rename(filepath.Join(tmp, split), filepath.Join(o.Out, split)); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(tmp); err != nil {
		return nil, err
	}
	return sum, nil
}

// selectFashionClasses returns the classes kept, in label order, and the
// index of each label's class among them (-1: dropped).
func selectFashionClasses(want []string) ([]string, []int, error) {
	labelToClass := make([]int, 256)
	for i := range labelToClass {
		labelToClass[i] = -1
	}
	keep := make([]bool, len(fashionMNISTClasses))
	if len(want) == 0 {
		for i := range keep {
			keep[i] = true
		}
	}
	for _, w := range want {
		name := strings.ToLower(strings.TrimSpace(w))
		found := false
		for i, c := range fashionMNISTClasses {
			if c == name {
				if keep[i] {
					return nil, nil, fmt.Errorf("--classes names %s twice", c)
				}
				keep[i], found = true, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("unknown class %q: Fashion-MNIST's classes are %s", w, strings.Join(fashionMNISTClasses, ", "))
		}
	}
	var classes []string
	for i, k := range keep {
		if k {
			labelToClass[i] = len(classes)
			classes = append(classes, fashionMNISTClasses[i])
		}
	}
	return classes, labelToClass, nil
}

// prepareOut creates out, or checks that it is empty. Leftover .tmp-*
// folders of an interrupted conversion are removed.
func prepareOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(out, 0o755)
	}
	if err != nil {
		return err
	}
	var stale []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".tmp-") {
			stale = append(stale, filepath.Join(out, e.Name()))
			continue
		}
		return fmt.Errorf("%s is not empty (it has %s): choose a new --out folder", out, e.Name())
	}
	for _, s := range stale {
		if err := os.RemoveAll(s); err != nil {
			return err
		}
	}
	return nil
}

func writePNGs(root, split string, imgs *augment.IDXImages, labels []byte, idx []int, classes []string, labelToClass []int, workers int) error {
	ch := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	var once sync.Once
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				class := classes[labelToClass[labels[i]]]
				p := filepath.Join(root, split, class, fmt.Sprintf("%05d.png", i))
				if err := writeGrayPNG(p, imgs.Image(i), imgs.Cols, imgs.Rows); err != nil {
					errc <- err
					once.Do(func() { close(done) })
					return
				}
			}
		}()
	}
feed:
	for _, i := range idx {
		select {
		case ch <- i:
		case <-done:
			break feed
		}
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func writeGrayPNG(path string, pix []byte, w, h int) error {
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func printConvertSummary(w io.Writer, outDir string, s *convertSummary) error {
	fmt.Fprintf(w, "wrote %s\n", outDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\t%s\t\n", strings.Join(s.Splits, "\t"))
	totals := make([]int, len(s.Splits))
	for c, class := range s.Classes {
		row := class
		for j, split := range s.Splits {
			n := s.Counts[split][c]
			totals[j] += n
			row += "\t" + commas(int64(n))
		}
		fmt.Fprintln(tw, row+"\t")
	}
	row := "total"
	for _, n := range totals {
		row += "\t" + commas(int64(n))
	}
	fmt.Fprintln(tw, row+"\t")
	return tw.Flush()
}

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:      "stats",
		Usage:     "count images, image sizes, duplicates and unreadable files of a dataset folder",
		ArgsUsage: "DIR",
		Description: "DIR is a split root (Train/ Validation/ [Test/]) or a folder of class folders.\n" +
			"Every file is read once: it is hashed (SHA-256) to find identical files within a\n" +
			"split and across splits (leakage), and decoded as training decodes it, so that the\n" +
			"files a run would skip are listed as unreadable with the reason: truncated or corrupt\n" +
			"images, images over --max-pixels (decompression bombs: the header is checked before\n" +
			"any pixel is decoded), and named pipes, devices or sockets (never opened for reading).",
		Flags: []cli.Flag{formatFlag("text", "json"),
			&cli.Float64Flag{Name: "max-pixels", Value: float64(augment.DefaultMaxPixels),
				Usage: "largest image, width × height, that training decodes; larger ones are listed as unreadable"}},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return errors.New("usage: kfash-tf data stats DIR")
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			ds, err := augment.Open(c.Args().First(), augment.OpenOptions{})
			if err != nil {
				return err
			}
			st, err := augment.Stats(ds, augment.StatsOptions{MaxPixels: int64(c.Float64("max-pixels"))})
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), st)
			}
			return printStats(out(c), st)
		},
	}
}

func printStats(w io.Writer, st *augment.DatasetStats) error {
	fmt.Fprintf(w, "%s (%s layout)\n\nimages per class\n", st.Root, st.Layout)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := "class"
	for _, s := range st.Splits {
		row += "\t" + s.Name
	}
	fmt.Fprintln(tw, row+"\t")
	for c, class := range st.Classes {
		row := class
		for _, s := range st.Splits {
			row += "\t" + commas(int64(s.Counts[c]))
		}
		fmt.Fprintln(tw, row+"\t")
	}
	row = "total"
	for _, s := range st.Splits {
		row += "\t" + commas(int64(s.Total))
	}
	fmt.Fprintln(tw, row+"\t")
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nlonger side (px)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, b := range st.Sizes {
		fmt.Fprintf(tw, "%s\t%s\t\n", b.Label, commas(int64(b.Count)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nduplicates across splits (leakage): %d pairs\n", len(st.CrossSplit))
	for _, p := range st.CrossSplit {
		fmt.Fprintf(w, "  %s  %s\n", p.PathA, p.PathB)
	}
	fmt.Fprintf(w, "duplicates within a split: %d groups\n", len(st.WithinSplit))
	for _, g := range st.WithinSplit {
		fmt.Fprintf(w, "  %s: %s\n", g.Split, strings.Join(g.Paths, "  "))
	}
	fmt.Fprintf(w, "unreadable files: %d\n", len(st.Unreadable))
	for _, u := range st.Unreadable {
		fmt.Fprintf(w, "  %s: %s\n", u.Path, u.Reason)
	}
	return nil
}
