package kfashion

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Style is one of the 23 styles of AI Hub's K-Fashion labels.
type Style struct {
	// Korean is the name the label files use (라벨링 → 스타일).
	Korean string
	// English is the class folder name the study uses (Resort, Hip-hop, ...).
	English string
	// Aliases are other spellings found in the labels, which LookupStyle
	// accepts too.
	Aliases []string
}

// styleTable is the K-Fashion style table in the order of the AI Hub
// dataset description.
var styleTable = [...]Style{
	{Korean: "리조트", English: "Resort"},
	{Korean: "레트로", English: "Retro"},
	{Korean: "스포티", English: "Sporty"},
	{Korean: "클래식", English: "Classic"},
	{Korean: "프레피", English: "Preppy"},
	{Korean: "매니시", English: "Mannish"},
	{Korean: "톰보이", English: "Tomboy"},
	{Korean: "페미닌", English: "Feminine"},
	{Korean: "로맨틱", English: "Romantic"},
	{Korean: "섹시", English: "Sexy"},
	{Korean: "히피", English: "Hippie"},
	{Korean: "웨스턴", English: "Western"},
	{Korean: "오리엔탈", English: "Oriental"},
	{Korean: "모던", English: "Modern"},
	{Korean: "소피스트케이티드", English: "Sophisticated"},
	{Korean: "아방가르드", English: "Avant-garde"},
	{Korean: "컨트리", English: "Country"},
	{Korean: "젠더리스", English: "Genderless"},
	{Korean: "키치", English: "Kitsch", Aliases: []string{"키치/키덜트", "키덜트", "Kidult", "Kitsch/Kidult"}},
	{Korean: "힙합", English: "Hip-hop"},
	{Korean: "펑크", English: "Punk"},
	{Korean: "밀리터리", English: "Military"},
	{Korean: "스트리트", English: "Street", Aliases: []string{"스트릿"}},
}

// Styles returns the 23 K-Fashion styles.
func Styles() []Style {
	out := make([]Style, len(styleTable))
	copy(out, styleTable[:])
	return out
}

// LookupStyle finds a style by its Korean name, English name or an
// alias. Letter case, spaces, hyphens, underscores and the Unicode form of
// Hangul (files written on macOS use decomposed jamo) do not matter, so
// "hip hop", "HIPHOP" and "Hip-hop" are the same style.
func LookupStyle(name string) (Style, bool) {
	key := styleKey(name)
	if key == "" {
		return Style{}, false
	}
	for _, s := range styleTable {
		if styleKey(s.Korean) == key || styleKey(s.English) == key {
			return s, true
		}
		for _, a := range s.Aliases {
			if styleKey(a) == key {
				return s, true
			}
		}
	}
	return Style{}, false
}

// styleKey is the form in which style names are compared.
func styleKey(s string) string {
	s = strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '_', '\u00a0':
			return -1
		}
		return r
	}, s)
}
