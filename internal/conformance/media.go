package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
)

// redPixelPNG is a 1×1 red PNG, base64-encoded, as the scenarios suggest.
func redPixelPNG() string {
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("encode 1x1 png: " + err.Error()) // cannot fail for an in-memory image
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// silentWAV is a tiny valid WAV file (8 kHz, 16-bit mono, 8 samples of
// silence), base64-encoded.
func silentWAV() string {
	const samples, rate, bits, channels = 8, 8000, 16, 1
	dataLen := samples * bits / 8 * channels
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + dataLen))
	b.WriteString("WAVEfmt ")
	w(uint32(16))                         // fmt chunk size
	w(uint16(1))                          // PCM
	w(uint16(channels))                   //
	w(uint32(rate))                       //
	w(uint32(rate * channels * bits / 8)) // byte rate
	w(uint16(channels * bits / 8))        // block align
	w(uint16(bits))                       //
	b.WriteString("data")
	w(uint32(dataLen))
	b.Write(make([]byte, dataLen))
	return base64.StdEncoding.EncodeToString(b.Bytes())
}
