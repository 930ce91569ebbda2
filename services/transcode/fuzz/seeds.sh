#!/usr/bin/env bash
# Seed corpora for the converter fuzz targets: small valid files made by
# independent tools (ImageMagick, ReportLab, python-docx/openpyxl,
# python-pptx), so libFuzzer starts from inside each format.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ../../../scripts/env.sh
convert=/usr/bin/convert-im6.q16
mkdir -p corpus/image corpus/pdf corpus/office corpus/text
for fmt in jpg png gif bmp webp tiff; do
  "$convert" -size 40x30 gradient:red-blue "corpus/image/seed.$fmt"
done
/usr/bin/python3 - <<'PY'
from reportlab.pdfgen import canvas
c = canvas.Canvas("corpus/pdf/seed.pdf", pagesize=(200, 100))
c.drawString(10, 50, "seed page")
c.showPage()
c.save()
import docx, openpyxl
d = docx.Document(); d.add_heading("Seed", 1); d.add_paragraph("text"); d.save("corpus/office/seed.docx")
w = openpyxl.Workbook(); w.active["A1"] = "seed"; w.save("corpus/office/seed.xlsx")
PY
"$PUSHMAIL_PYTHON" - <<'PY'
from pptx import Presentation
p = Presentation(); s = p.slides.add_slide(p.slide_layouts[0]); s.shapes.title.text = "Seed"
p.save("corpus/office/seed.pptx")
PY
printf '<p>季度报告 <b>seed</b></p>' | iconv -f UTF-8 -t GBK >corpus/text/seed-gbk.html
printf 'plain ascii seed' >corpus/text/seed.txt
