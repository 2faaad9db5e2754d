package app

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment/kfashion"
)

// kfashionStudyStyles are the styles of the K-Fashion study.
const kfashionStudyStyles = "resort,retro,sporty"

// kfashionProgressEvery is how often a long import stage prints a line.
const kfashionProgressEvery = 5 * time.Second

func importKFashionCommand() *cli.Command {
	return &cli.Command{
		Name:  "import-kfashion",
		Usage: "build Train/Validation style folders from AI Hub's K-Fashion download",
		Description: "Reads AI Hub's K-Fashion download (one JSON label per photo) from --src and writes\n" +
			"OUT/Train/<Style>/ and OUT/Validation/<Style>/ with --train-per-class and --val-per-class\n" +
			"photos of each style in --styles: the layout 'kfash-tf train --data OUT' reads.\n\n" +
			"--src is the download folder, searched recursively: …/라벨링데이터/<style>/<id>.json and\n" +
			"…/원천데이터/<style>/<id>.jpg as folders, as .zip archives (read in place, never unpacked;\n" +
			"CP949 member names are understood), or both; or a single .zip. A label and a photo pair up\n" +
			"by file name (1234.json, 1234.jpg), else by the label's 이미지 파일명 or 이미지 식별자. The style\n" +
			"is the label's 스타일[0].스타일. AI Hub's own Training/Validation folders are pooled: the\n" +
			"split is made here.\n\n" +
			"Per style, the pairs are sorted by id and shuffled with --seed (each style on its own, so\n" +
			"adding a style does not change the others' picks), then taken in order: the first\n" +
			"--train-per-class go to Train, the next --val-per-class to Validation. Every taken photo is\n" +
			"decoded (--verify header: only its header is read); a bad one is skipped and replaced by\n" +
			"the next. A style with fewer photos is split in the same proportion, with a warning.\n\n" +
			"Photos are hard-linked when --src and OUT are on one file system (one file with two names:\n" +
			"do not edit them in place), copied otherwise; zip members are written as files.\n" +
			"--crop outfit crops each photo to the union of its garment boxes (렉트좌표 of 상의, 하의,\n" +
			"아우터, 원피스) plus a 5% margin and writes a JPEG; photos without a box are skipped.\n\n" +
			"OUT receives manifest.csv (one row per photo: id, style, sub_style, split, file, sources,\n" +
			"crop) and import-summary.json (settings, counts, skipped files by reason with examples).\n" +
			"OUT must be empty or new, or hold an import made with the same settings, which is replaced\n" +
			"(run again after downloading more archives).\n\n" +
			"Styles (English or Korean name):\n" + kfashionStyleHelp() + "\n\n" +
			"Examples:\n" +
			"  kfash-tf data import-kfashion --src ~/aihub/K-Fashion --out data/kfashion\n" +
			"  kfash-tf data import-kfashion --src ~/aihub/K-Fashion --out data/kf-outfit --crop outfit \\\n" +
			"      --styles 리조트,레트로,스포티 --train-per-class 1000 --val-per-class 250 --seed 7\n" +
			"  kfash-tf data stats data/kfashion && kfash-tf train vgg8 --data data/kfashion",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "src", Usage: "AI Hub K-Fashion download: folder (of folders and/or .zip archives) or one .zip"},
			&cli.StringFlag{Name: "out", Usage: "output folder (new, empty, or a previous import with the same settings)"},
			&cli.StringFlag{Name: "styles", Value: kfashionStudyStyles, Usage: "comma-separated styles to import, English or Korean; each becomes a class folder"},
			&cli.IntFlag{Name: "train-per-class", Value: 2400, Usage: "photos of each style for Train"},
			&cli.IntFlag{Name: "val-per-class", Value: 600, Usage: "photos of each style for Validation"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the per-style shuffle that picks the photos"},
			&cli.StringFlag{Name: "crop", Value: kfashion.CropNone, Usage: "none (photos as they are) or outfit (crop to the garment boxes + 5%, JPEG)"},
			&cli.StringFlag{Name: "verify", Value: kfashion.VerifyFull, Usage: "check of each picked photo: full (decode it) or header (format and size only; faster)"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "goroutines reading labels and photos"},
			formatFlag("text", "json"),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("unexpected argument %q (flags take values: --src DIR --out DIR)", c.Args().First())
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			if c.String("src") == "" || c.String("out") == "" {
				return errors.New("--src and --out are required: kfash-tf data import-kfashion --src AIHUB_DIR --out DIR (see --help)")
			}
			prog := &kfashionProgress{w: c.App.ErrWriter, every: kfashionProgressEvery}
			sum, err := kfashion.Import(kfashion.Options{
				Src: c.String("src"), Out: c.String("out"), Styles: strings.Split(c.String("styles"), ","),
				TrainPerClass: c.Int("train-per-class"), ValPerClass: c.Int("val-per-class"), Seed: c.Int64("seed"),
				Crop: c.String("crop"), Verify: c.String("verify"), Workers: c.Int("workers"), Progress: prog.report,
			})
			if err != nil {
				return kfashionFlagError(err)
			}
			for _, w := range sum.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), sum)
			}
			return printKFashionSummary(out(c), c.String("out"), sum)
		},
	}
}

// kfashionSettingFlags are the flags of the settings kfashion.SettingDiff
// names; crop_margin has none (it is fixed).
var kfashionSettingFlags = map[string]string{
	"src": "--src", "styles": "--styles", "train_per_class": "--train-per-class", "val_per_class": "--val-per-class",
	"seed": "--seed", "crop": "--crop", "crop_margin": "crop margin", "verify": "--verify",
}

// kfashionFlagError restates an import into a folder that holds an import
// made with other settings in terms of the flags that differ.
func kfashionFlagError(err error) error {
	var se *kfashion.SettingsError
	if !errors.As(err, &se) {
		return err
	}
	d := make([]string, len(se.Diffs))
	for i, x := range se.Diffs {
		name := kfashionSettingFlags[x.Name]
		if name == "" {
			name = x.Name
		}
		d[i] = fmt.Sprintf("%s %s (it has %s)", name, x.Now, x.Was)
	}
	return fmt.Errorf("%s holds an import made with other settings (%s): choose a new --out folder, or delete %s to import again",
		se.Out, strings.Join(d, "; "), se.Out)
}

// kfashionStyleHelp lists the styles as "  Resort 리조트, Retro 레트로, …",
// four to a line.
func kfashionStyleHelp() string {
	var lines, line []string
	for _, s := range kfashion.Styles() {
		name := s.English + " " + s.Korean
		if len(s.Aliases) > 0 {
			name += " (" + strings.Join(s.Aliases, ", ") + ")"
		}
		line = append(line, name)
		if len(line) == 4 {
			lines, line = append(lines, "  "+strings.Join(line, ", ")), nil
		}
	}
	if len(line) > 0 {
		lines = append(lines, "  "+strings.Join(line, ", "))
	}
	return strings.Join(lines, ",\n")
}

// kfashionProgress prints an import's progress: one line when a stage
// ends and, on long stages, one every few seconds, never one per file.
type kfashionProgress struct {
	w     io.Writer
	every time.Duration
	stage string
	since time.Time // last line printed, or start of the stage
	last  kfashion.Progress
}

func (p *kfashionProgress) report(r kfashion.Progress) {
	if r.Stage != p.stage {
		p.stage, p.since = r.Stage, time.Now()
	}
	finished := r.Total > 0 && r.Done == r.Total
	if r == p.last || (!finished && time.Since(p.since) < p.every) {
		return
	}
	p.since, p.last = time.Now(), r
	switch r.Stage {
	case kfashion.StageScan:
		fmt.Fprintf(p.w, "scanning --src: %s label and image files found\n", commas(int64(r.Done)))
	case kfashion.StageLabels:
		fmt.Fprintf(p.w, "reading labels: %s/%s\n", commas(int64(r.Done)), commas(int64(r.Total)))
	case kfashion.StageImages:
		fmt.Fprintf(p.w, "importing photos: %s/%s\n", commas(int64(r.Done)), commas(int64(r.Total)))
	}
}

// kfashionPairs counts label–photo pairs in words.
func kfashionPairs(n int) string {
	if n == 1 {
		return "1 label–photo pair"
	}
	return commas(int64(n)) + " label–photo pairs"
}

// kfashionMaxShownExamples is how many example paths per skip reason the
// text summary prints (import-summary.json keeps a few more).
const kfashionMaxShownExamples = 3

func printKFashionSummary(w io.Writer, outDir string, s *kfashion.Summary) error {
	total := s.Linked + s.Copied + s.Written
	var how []string
	for _, h := range []struct {
		n    int
		what string
	}{{s.Linked, "hard links"}, {s.Copied, "copies"}, {s.Written, "files written"}} {
		if h.n > 0 {
			how = append(how, commas(int64(h.n))+" "+h.what)
		}
	}
	verb := "imported"
	if s.Replaced {
		verb = "re-imported (previous import replaced)"
	}
	fmt.Fprintf(w, "%s %s photos into %s (%s)\n", verb, commas(int64(total)), outDir, strings.Join(how, ", "))
	fmt.Fprintf(w, "read %s label and %s image files (%d zip archives) from %s\n\n",
		commas(int64(s.LabelFiles)), commas(int64(s.ImageFiles)), s.Archives, s.Settings.Src)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "style\tfound\tTrain\tValidation\t")
	var found, train, val int
	for _, c := range s.Classes {
		// The Korean name comes last, outside the aligned columns:
		// tabwriter counts runes, and Hangul is two columns wide.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t  %s\n", c.Style, commas(int64(c.Found)), commas(int64(c.Train)), commas(int64(c.Validation)), c.Korean)
		found, train, val = found+c.Found, train+c.Train, val+c.Validation
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\t\n", commas(int64(found)), commas(int64(train)), commas(int64(val)))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nnot imported: %s of other styles, %s beyond --train-per-class + --val-per-class\n",
		kfashionPairs(s.OtherStyles), kfashionPairs(s.NotPicked))
	skipped := 0
	for _, k := range s.Skipped {
		skipped += k.Count
	}
	fmt.Fprintf(w, "skipped: %s files\n", commas(int64(skipped)))
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "  %-20s %8s  %s\n", k.Reason, commas(int64(k.Count)), k.Description)
		for i, e := range k.Examples {
			if i == kfashionMaxShownExamples {
				break
			}
			fmt.Fprintf(w, "      %s\n", e)
		}
	}
	fmt.Fprintf(w, "\nwrote %s and %s\n", filepath.Join(outDir, kfashion.ManifestFile), filepath.Join(outDir, kfashion.SummaryFile))
	return nil
}
