// Text extraction: what kind of file this is (from its bytes, not its name), and its text as Blocks in
// reading order with headings kept, for the chunker.
import { parse as parseHtml, type HTMLElement, NodeType, type Node } from 'node-html-parser';
import type { Block } from './chunking.js';

export type DocumentFormat = 'text' | 'markdown' | 'html' | 'pdf' | 'docx';

export class ExtractError extends Error {
  constructor(
    /** Stable code for the API: empty_document, unsupported_format, corrupt_document, encrypted_document. */
    readonly code: 'empty_document' | 'unsupported_format' | 'corrupt_document' | 'encrypted_document',
    message: string,
  ) {
    super(message);
  }
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
    if (Buffer.from(bytes).includes('word/document.xml')) return 'docx';
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
  return s
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__)(.*?)\1/g, '$2')
    .replace(/(\*|_)(\S.*?)\1/g, '$2')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/^>\s?/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

const HTML_BLOCKS = new Set(['p', 'li', 'td', 'th', 'dd', 'dt', 'blockquote', 'pre', 'figcaption', 'caption', 'address']);
const HTML_SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'head', 'nav', 'iframe']);

/** HTML: h1-h6 become headings; block elements become paragraphs; scripts, styles and navigation are dropped. */
export function extractHtml(html: string): Block[] {
  const root = parseHtml(html, { blockTextElements: { pre: true } });
  const blocks: Block[] = [];
  let loose: string[] = [];
  const flushLoose = () => {
    const text = loose.join(' ').replace(/\s+/g, ' ').trim();
    if (text) blocks.push({ kind: 'paragraph', text });
    loose = [];
  };
  const walk = (node: Node) => {
    if (node.nodeType === NodeType.TEXT_NODE) {
      loose.push(node.text);
      return;
    }
    if (node.nodeType !== NodeType.ELEMENT_NODE) return;
    const el = node as HTMLElement;
    const tag = el.rawTagName?.toLowerCase() ?? '';
    if (HTML_SKIP.has(tag)) return;
    const heading = tag.match(/^h([1-6])$/);
    if (heading) {
      flushLoose();
      const text = el.text.replace(/\s+/g, ' ').trim();
      if (text) blocks.push({ kind: 'heading', level: Number(heading[1]), text });
      return;
    }
    if (HTML_BLOCKS.has(tag)) {
      flushLoose();
      el.childNodes.forEach(walk);
      flushLoose();
      return;
    }
    if (tag === 'br') loose.push(' ');
    el.childNodes.forEach(walk);
    if (['div', 'section', 'article', 'main', 'ul', 'ol', 'table', 'tr', 'body', 'header', 'footer'].includes(tag)) flushLoose();
  };
  walk(root);
  flushLoose();
  return blocks;
}

/** PDF: each page's text, with its page number kept for citations. */
export async function extractPdf(bytes: Uint8Array): Promise<Block[]> {
  const { getDocumentProxy, extractText } = await import('unpdf');
  let pages: string[];
  try {
    // pdf.js takes ownership of the buffer it is given, so it gets a copy.
    const doc = await getDocumentProxy(new Uint8Array(bytes));
    pages = (await extractText(doc, { mergePages: false })).text;
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    if (name === 'PasswordException') throw new ExtractError('encrypted_document', 'The PDF is password-protected');
    throw new ExtractError('corrupt_document', `The PDF could not be read (${(err as Error).message})`);
  }
  const blocks: Block[] = [];
  pages.forEach((text, i) => {
    for (const p of extractPlainText(text)) blocks.push({ ...p, page: i + 1 });
  });
  return blocks;
}

/** DOCX: converted to HTML by mammoth (Word heading styles become h1-h6), then read like HTML. */
export async function extractDocx(bytes: Uint8Array): Promise<Block[]> {
  const mammoth = (await import('mammoth')).default;
  let html: string;
  try {
    html = (await mammoth.convertToHtml({ buffer: Buffer.from(bytes) })).value;
  } catch (err) {
    throw new ExtractError('corrupt_document', `The DOCX could not be read (${(err as Error).message})`);
  }
  return extractHtml(html);
}

/** The one entry point: bytes in, Blocks out; nothing readable is an error, never an empty document. */
export async function extractBlocks(bytes: Uint8Array, format: DocumentFormat): Promise<Block[]> {
  const text = () => Buffer.from(bytes).toString('utf8').replace(/^\uFEFF/, '');
  const blocks =
    format === 'pdf'
      ? await extractPdf(bytes)
      : format === 'docx'
        ? await extractDocx(bytes)
        : format === 'html'
          ? extractHtml(text())
          : format === 'markdown'
            ? extractMarkdown(text())
            : extractPlainText(text());
  if (!blocks.some((b) => b.kind === 'paragraph')) {
    throw new ExtractError('empty_document', format === 'pdf' ? 'The PDF has no extractable text (scanned images are not read)' : 'The document has no text');
  }
  return blocks;
}
