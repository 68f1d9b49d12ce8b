// Text extraction: what kind of file this is (from its bytes, not its name), and its text as Blocks in
// reading order with headings kept, for the chunker.
import { parse as parseHtml, type HTMLElement, NodeType, type Node } from 'node-html-parser';
import type { Block } from './chunking.js';
import { checkDeclaredSize, inflateEntry, readZipDirectory, type ZipEntry, ZipFormatError, ZipLimitError } from './zip-directory.js';

export type DocumentFormat = 'text' | 'markdown' | 'html' | 'pdf' | 'docx';

export class ExtractError extends Error {
  constructor(
    /**
     * Stable code for the API: empty_document, unsupported_format, corrupt_document, encrypted_document, and
     * document_too_complex for a file past the extraction limits.
     */
    readonly code: 'empty_document' | 'unsupported_format' | 'corrupt_document' | 'encrypted_document' | 'document_too_complex',
    message: string,
  ) {
    super(message);
  }
}

/** How much work one document may cause; past any of them it is refused as document_too_complex. */
export interface ExtractLimits {
  /** DOCX: the ZIP's entries uncompressed, all together (declared, and checked again while inflating). */
  maxDecompressedBytes: number;
  maxZipEntries: number;
  /** DOCX: elements in its XML parts. */
  maxXmlElements: number;
  maxPdfPages: number;
  /** HTML (and DOCX, read as HTML): elements, and how deeply they nest. */
  maxHtmlNodes: number;
  maxHtmlDepth: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = {
  maxDecompressedBytes: 100 * 1024 * 1024,
  maxZipEntries: 2_000,
  maxXmlElements: 2_000_000,
  maxPdfPages: 2_000,
  maxHtmlNodes: 500_000,
  maxHtmlDepth: 500,
};

/**
 * The upload's check, cheap enough for the request path (nothing is extracted or inflated): the format from the
 * bytes, text that is not blank, and a DOCX's ZIP directory (entries, declared sizes, word/document.xml). What
 * only extraction can tell (a PDF's password, an HTML page without text) is found by the ingestion worker.
 */
export function inspectDocument(
  bytes: Uint8Array,
  filename: string | undefined,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): DocumentFormat {
  const format = detectFormat(bytes, filename);
  if (
    (format === 'text' || format === 'markdown') &&
    !/\S/.test(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  ) {
    throw new ExtractError('empty_document', 'The document has no text');
  }
  if (format === 'docx') docxDirectory(bytes, limits);
  return format;
}

/** A DOCX's ZIP directory, within the limits and naming word/document.xml. */
function docxDirectory(bytes: Uint8Array, limits: ExtractLimits): ZipEntry[] {
  try {
    const entries = readZipDirectory(bytes, limits.maxZipEntries);
    checkDeclaredSize(entries, limits.maxDecompressedBytes);
    if (!entries.some((e) => e.name === 'word/document.xml'))
      throw new ExtractError('unsupported_format', 'ZIP archives other than DOCX are not supported');
    return entries;
  } catch (err) {
    throw zipError(err);
  }
}

function zipError(err: unknown): unknown {
  if (err instanceof ZipLimitError) return new ExtractError('document_too_complex', err.message);
  if (err instanceof ZipFormatError) return new ExtractError('corrupt_document', `The DOCX could not be read (${err.message})`);
  return err;
}

/**
 * Sniffs the format from the content. The file name only separates Markdown from plain text, which no byte
 * signature can tell apart reliably; binary content that is neither PDF nor DOCX is refused.
 */
export function detectFormat(bytes: Uint8Array, filename?: string): DocumentFormat {
  const head = Buffer.from(bytes.subarray(0, 1024));
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return 'pdf';
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    // A ZIP: DOCX when it carries word/document.xml (its name is in the local file headers).
    if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('word/document.xml')) return 'docx';
    throw new ExtractError('unsupported_format', 'ZIP archives other than DOCX are not supported');
  }
  const text = head.toString('utf8');
  if (bytes.length > 0 && !isText(head)) throw new ExtractError('unsupported_format', 'Binary file of an unsupported type');
  if (/^\s*(<!doctype html|<html[\s>]|<head[\s>]|<body[\s>])/i.test(text) || /<(p|div|h[1-6]|ul|table)[\s>][\s\S]*<\/\1>/i.test(text)) {
    return 'html';
  }
  if (/\.(md|markdown)$/i.test(filename ?? '') || /^#{1,6}\s+\S/m.test(text)) return 'markdown';
  return 'text';
}

/** Text means: decodes as UTF-8 (the head may cut a character at its end) and has no NUL or stray control bytes. */
function isText(head: Buffer): boolean {
  let controls = 0;
  for (const b of head) {
    if (b === 0) return false;
    if (b < 0x09 || (b > 0x0d && b < 0x20)) controls++;
  }
  if (controls > head.length / 100) return false;
  const decoded = head.toString('utf8');
  const bad = (decoded.match(/\uFFFD/g) ?? []).length;
  return bad <= 1;
}

export function extractPlainText(text: string): Block[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n\s*\n/)
    .map((p) => ({ kind: 'paragraph' as const, text: p.trim() }))
    .filter((b) => b.text);
}

/** Markdown: ATX and setext headings, paragraphs, list items and fenced code as paragraphs; markup stripped. */
export function extractMarkdown(md: string): Block[] {
  const blocks: Block[] = [];
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  let para: string[] = [];
  let fence: string | null = null;
  const flush = () => {
    const text = stripInlineMarkdown(para.join(' ')).trim();
    if (text) blocks.push({ kind: 'paragraph', text });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fenceMatch = line.match(/^\s*(```|~~~)/);
    if (fenceMatch) {
      if (fence === null) {
        flush();
        fence = fenceMatch[1]!;
      } else if (fenceMatch[1] === fence) {
        // Code is kept verbatim as one paragraph: callers may ask about a command or a setting.
        const text = para.join('\n').trim();
        if (text) blocks.push({ kind: 'paragraph', text });
        para = [];
        fence = null;
      }
      continue;
    }
    if (fence !== null) {
      para.push(line);
      continue;
    }
    const atx = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (atx) {
      flush();
      blocks.push({ kind: 'heading', level: atx[1]!.length, text: stripInlineMarkdown(atx[2]!) });
      continue;
    }
    const next = lines[i + 1];
    if (para.length === 0 && line.trim() && next !== undefined && /^\s{0,3}(=+|-+)\s*$/.test(next) && !/^\s*[-*+]\s/.test(line)) {
      blocks.push({ kind: 'heading', level: next.trim().startsWith('=') ? 1 : 2, text: stripInlineMarkdown(line.trim()) });
      i++;
      continue;
    }
    if (!line.trim()) {
      flush();
      continue;
    }
    // Each list item is its own paragraph, so one item's text never runs into the next.
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      flush();
      para.push(line.replace(/^\s*([-*+]|\d+[.)])\s+/, ''));
      continue;
    }
    para.push(line.trim());
  }
  flush();
  return blocks;
}

function stripInlineMarkdown(s: string): string {
  // Scanners, not the equivalent regexes: `\[([^\]]*)\]\(...\)` and the lazy `(\*\*)(.*?)\1` rescan the rest
  // of the text from every unclosed marker, which is quadratic (160k stray brackets took 11 s).
  return unwrapPairs(unwrapPairs(unwrapLinks(s), ['**', '__'], false), ['*', '_'], true)
    .replace(/`([^`]*)`/g, '$1')
    .replace(/^>\s?/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** `[text](url)` and `![alt](url)` become their text; linear: each `]` and `)` is searched for once. */
function unwrapLinks(s: string): string {
  let out = '';
  let i = 0;
  // The next `]` at or after a position is the same for every `[` before it, so it is looked up once per `]`.
  let close = -1;
  while (i < s.length) {
    const image = s[i] === '!' && s[i + 1] === '[';
    const open = image ? i + 1 : s[i] === '[' ? i : -1;
    if (open < 0) {
      out += s[i++];
      continue;
    }
    if (close <= open) close = s.indexOf(']', open + 1);
    if (close < 0) break;
    if (s[close + 1] === '(') {
      const paren = s.indexOf(')', close + 2);
      // No `)` after this `](` means none after any later one either.
      if (paren < 0) break;
      out += s.slice(open + 1, close);
      i = paren + 1;
      continue;
    }
    out += s[i++];
  }
  return out + s.slice(i);
}

/**
 * `**bold**`-style spans become their inner text: each marker pairs with the nearest same marker after it
 * (`nonSpaceStart`: the span must not start with a space). Linear: a failed search for a closing marker means no
 * later marker can close either, so the rest is copied as it is.
 */
function unwrapPairs(s: string, markers: string[], nonSpaceStart: boolean): string {
  let out = '';
  let i = 0;
  const exhausted = new Set<string>();
  while (i < s.length) {
    const marker = markers.find((m) => s.startsWith(m, i));
    const innerStart = marker ? i + marker.length : i;
    if (!marker || exhausted.has(marker) || (nonSpaceStart && (innerStart >= s.length || /\s/.test(s[innerStart]!)))) {
      out += s[i++];
      continue;
    }
    const close = s.indexOf(marker, innerStart + (nonSpaceStart ? 1 : 0));
    if (close < 0) {
      exhausted.add(marker);
      out += s[i++];
      continue;
    }
    out += s.slice(innerStart, close);
    i = close + marker.length;
  }
  return out;
}

const HTML_BLOCKS = new Set(['p', 'li', 'td', 'th', 'dd', 'dt', 'blockquote', 'pre', 'figcaption', 'caption', 'address']);
const HTML_SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'head', 'nav', 'iframe']);

const HTML_FLUSH_AFTER = new Set(['div', 'section', 'article', 'main', 'ul', 'ol', 'table', 'tr', 'body', 'header', 'footer']);

/**
 * HTML: h1-h6 become headings; block elements become paragraphs; scripts, styles and navigation are dropped.
 * Walked with an explicit stack (never recursion: 20,000 nested elements overflowed the call stack), after a
 * linear count of tags refuses a page too big to parse within the limits.
 */
export function extractHtml(html: string, limits: Pick<ExtractLimits, 'maxHtmlNodes' | 'maxHtmlDepth'> = DEFAULT_EXTRACT_LIMITS): Block[] {
  const tags = countTags(html);
  if (tags > limits.maxHtmlNodes) {
    throw new ExtractError('document_too_complex', `The HTML has more than ${limits.maxHtmlNodes} elements (${tags})`);
  }
  const root = parseHtml(html, { blockTextElements: { pre: true } });
  const blocks: Block[] = [];
  let loose: string[] = [];
  const flushLoose = () => {
    const text = loose.join(' ').replace(/\s+/g, ' ').trim();
    if (text) blocks.push({ kind: 'paragraph', text });
    loose = [];
  };
  // A frame either visits a node or, after a node's children, runs what the recursive walk did after them.
  type Frame = { node: Node; depth: number } | { after: () => void };
  const stack: Frame[] = [{ node: root, depth: 0 }];
  const pushChildren = (el: HTMLElement, depth: number) => {
    if (depth > limits.maxHtmlDepth) {
      throw new ExtractError('document_too_complex', `The HTML is nested deeper than ${limits.maxHtmlDepth} elements`);
    }
    for (let i = el.childNodes.length - 1; i >= 0; i--) stack.push({ node: el.childNodes[i]!, depth });
  };
  while (stack.length) {
    const frame = stack.pop()!;
    if ('after' in frame) {
      frame.after();
      continue;
    }
    const { node, depth } = frame;
    if (node.nodeType === NodeType.TEXT_NODE) {
      loose.push(node.text);
      continue;
    }
    if (node.nodeType !== NodeType.ELEMENT_NODE) continue;
    const el = node as HTMLElement;
    const tag = el.rawTagName?.toLowerCase() ?? '';
    if (HTML_SKIP.has(tag)) continue;
    const heading = tag.match(/^h([1-6])$/);
    if (heading) {
      flushLoose();
      const text = textOf(el).replace(/\s+/g, ' ').trim();
      if (text) blocks.push({ kind: 'heading', level: Number(heading[1]), text });
      continue;
    }
    if (HTML_BLOCKS.has(tag)) {
      flushLoose();
      stack.push({ after: flushLoose });
      pushChildren(el, depth + 1);
      continue;
    }
    if (tag === 'br') loose.push(' ');
    if (HTML_FLUSH_AFTER.has(tag)) stack.push({ after: flushLoose });
    pushChildren(el, depth + 1);
  }
  flushLoose();
  return blocks;
}

/** An element's text without recursion (node-html-parser's `.text` recurses, so deep nesting overflows it). */
function textOf(el: Node): string {
  const parts: string[] = [];
  const stack: Node[] = [el];
  while (stack.length) {
    const node = stack.pop()!;
    if (node.nodeType === NodeType.TEXT_NODE) parts.push(node.text);
    else for (let i = node.childNodes.length - 1; i >= 0; i--) stack.push(node.childNodes[i]!);
  }
  return parts.join('');
}

/** The same count over bytes (a DOCX part), without making a string of them. */
function countTagsIn(bytes: Buffer): number {
  let n = 0;
  for (let i = bytes.indexOf(0x3c); i >= 0; i = bytes.indexOf(0x3c, i + 1)) {
    const c = bytes[i + 1]! | 0x20;
    if (c >= 0x61 && c <= 0x7a) n++;
  }
  return n;
}

/** Opening tags, counted in one pass: `<` followed by a letter. */
function countTags(html: string): number {
  let n = 0;
  for (let i = html.indexOf('<'); i >= 0; i = html.indexOf('<', i + 1)) {
    const c = html.charCodeAt(i + 1) | 0x20;
    if (c >= 0x61 && c <= 0x7a) n++;
  }
  return n;
}

/**
 * PDF: each page's text as paragraphs and headings, with its page number kept for citations. A PDF printed from
 * HTML or a word processor has no heading markup (and rarely an outline), but its headings are set larger than its
 * body text: lines in a font size clearly above the body's (the size most characters use) are headings, the largest
 * size level 1. Lines further apart than the body's line spacing start a new paragraph.
 */
export async function extractPdf(bytes: Uint8Array, limits: Pick<ExtractLimits, 'maxPdfPages'> = DEFAULT_EXTRACT_LIMITS): Promise<Block[]> {
  const { getDocumentProxy, extractTextItems } = await import('unpdf');
  let pages: PdfTextItem[][];
  try {
    // pdf.js takes ownership of the buffer it is given, so it gets a copy.
    const doc = await getDocumentProxy(new Uint8Array(bytes));
    // The page count is in the page tree: known before any page is read.
    if (doc.numPages > limits.maxPdfPages) {
      throw new ExtractError('document_too_complex', `The PDF has ${doc.numPages} pages (the limit is ${limits.maxPdfPages})`);
    }
    pages = (await extractTextItems(doc)).items;
  } catch (err) {
    if (err instanceof ExtractError) throw err;
    const name = (err as { name?: string }).name ?? '';
    if (name === 'PasswordException') throw new ExtractError('encrypted_document', 'The PDF is password-protected');
    throw new ExtractError('corrupt_document', `The PDF could not be read (${(err as Error).message})`);
  }
  return pdfBlocks(pages.map(pdfLines));
}

/** What pdf.js gives for each piece of text on a page (unpdf's extractTextItems): PDF coordinates, y upwards. */
interface PdfTextItem {
  str: string;
  x: number;
  y: number;
  width: number;
  fontSize: number;
  hasEOL: boolean;
}

interface PdfLine {
  text: string;
  /** The font size most of the line's characters are set in (pt, rounded to a quarter). */
  size: number;
  /** Baseline, PDF coordinates (larger is higher on the page). */
  y: number;
}

const quarter = (n: number) => Math.round(n * 4) / 4;

/** A page's text items joined into lines: items on one baseline are one line, `hasEOL` or a new baseline ends it. */
function pdfLines(items: PdfTextItem[]): PdfLine[] {
  const lines: PdfLine[] = [];
  let text = '';
  let y = 0;
  let end = 0;
  let sizes = new Map<number, number>();
  const close = () => {
    const t = text.replace(/\s+/g, ' ').trim();
    if (t) lines.push({ text: t, y, size: [...sizes].sort((a, b) => b[1] - a[1])[0]![0] });
    text = '';
    sizes = new Map();
  };
  for (const item of items) {
    const size = quarter(item.fontSize);
    if (item.str.trim()) {
      if (text && Math.abs(item.y - y) > size / 2) close();
      // Runs of one line (another font, a link) come as separate items; a visible gap between them is a space.
      if (text && !/\s$/.test(text) && !/^\s/.test(item.str) && item.x - end > size * 0.15) text += ' ';
      if (!text) y = item.y;
      text += item.str;
      end = item.x + item.width;
      sizes.set(size, (sizes.get(size) ?? 0) + item.str.length);
    } else if (item.str) text += ' ';
    if (item.hasEOL) close();
  }
  close();
  return lines;
}

/** Lines of every page to Blocks: headings by font size, paragraphs by line spacing, each with its page. */
function pdfBlocks(pages: PdfLine[][]): Block[] {
  // The body's size: the one most characters are set in.
  const chars = new Map<number, number>();
  for (const line of pages.flat()) chars.set(line.size, (chars.get(line.size) ?? 0) + line.text.length);
  const ranked = [...chars].sort((a, b) => b[1] - a[1]);
  const body = ranked[0]?.[0] ?? 0;
  // Heading sizes: clearly larger than the body (15%, so a rounding or a superscript is not one), largest first.
  const headingSizes = ranked
    .map(([size]) => size)
    .filter((size) => size > body * 1.15)
    .sort((a, b) => b - a)
    .slice(0, 6);
  const blocks: Block[] = [];
  pages.forEach((lines, i) => {
    const page = i + 1;
    let previous: PdfLine | undefined;
    for (const line of lines) {
      const level = headingSizes.indexOf(line.size) + 1;
      const last = blocks.at(-1);
      // Close enough to the line above to continue its block: within 1.6 line heights, below it, same size.
      const continues =
        previous !== undefined &&
        last?.page === page &&
        previous.size === line.size &&
        previous.y > line.y &&
        previous.y - line.y <= line.size * 1.6;
      // A long line in a large size is display text, not a heading.
      if (level > 0 && line.text.length <= 200) {
        if (continues && last.kind === 'heading') last.text += ` ${line.text}`;
        else blocks.push({ kind: 'heading', level, text: line.text, page });
      } else if (continues && last.kind === 'paragraph') last.text += ` ${line.text}`;
      else blocks.push({ kind: 'paragraph', text: line.text, page });
      previous = line;
    }
  });
  return blocks;
}

/**
 * DOCX: converted to HTML by mammoth (Word heading styles become h1-h6), then read like HTML. Every entry is first
 * inflated here with its declared size as the cap and its XML elements counted, so mammoth (whose unzip has no
 * limits) only ever sees an archive known to be within them.
 */
export async function extractDocx(bytes: Uint8Array, limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS): Promise<Block[]> {
  let elements = 0;
  try {
    for (const entry of docxDirectory(bytes, limits)) {
      const content = inflateEntry(bytes, entry);
      if (/\.(xml|rels)$/i.test(entry.name)) elements += countTagsIn(content);
      if (elements > limits.maxXmlElements) {
        throw new ExtractError('document_too_complex', `The DOCX has more than ${limits.maxXmlElements} XML elements`);
      }
    }
  } catch (err) {
    throw zipError(err);
  }
  const mammoth = (await import('mammoth')).default;
  let html: string;
  try {
    // Images are left out (mammoth would inline each one as base64): only text is indexed.
    const convertImage = mammoth.images.imgElement(async () => ({ src: '' }));
    html = (await mammoth.convertToHtml({ buffer: Buffer.from(bytes) }, { convertImage })).value;
  } catch (err) {
    throw new ExtractError('corrupt_document', `The DOCX could not be read (${(err as Error).message})`);
  }
  return extractHtml(html, limits);
}

/** The one entry point: bytes in, Blocks out; nothing readable is an error, never an empty document. */
export async function extractBlocks(
  bytes: Uint8Array,
  format: DocumentFormat,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<Block[]> {
  const text = () =>
    Buffer.from(bytes)
      .toString('utf8')
      .replace(/^\uFEFF/, '');
  const blocks =
    format === 'pdf'
      ? await extractPdf(bytes, limits)
      : format === 'docx'
        ? await extractDocx(bytes, limits)
        : format === 'html'
          ? extractHtml(text(), limits)
          : format === 'markdown'
            ? extractMarkdown(text())
            : extractPlainText(text());
  if (!blocks.some((b) => b.kind === 'paragraph')) {
    throw new ExtractError(
      'empty_document',
      format === 'pdf' ? 'The PDF has no extractable text (scanned images are not read)' : 'The document has no text',
    );
  }
  return blocks;
}
