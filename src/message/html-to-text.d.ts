// Type declarations for the part of html-to-text this project uses (the package ships no types).
declare module 'html-to-text' {
  export function convert(html: string, options?: Record<string, unknown>): string;
}
