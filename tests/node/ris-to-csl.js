// Reads RIS on stdin and prints what citation-js (@citation-js/plugin-ris, the "mixed" spec it uses by
// default) makes of it: one CSL-JSON item per record, as a JSON array. Run by tests/test_ris_importers.py.
const { plugins } = require('@citation-js/core')
require('@citation-js/plugin-ris')

const text = require('fs').readFileSync(0, 'utf8')
const items = plugins.input.chain(text, { forceType: '@ris/file', generateGraph: false })
process.stdout.write(JSON.stringify(items))
