/* Private: text from files and programs made safe to print. */
#ifndef NOGRAD_CORE_TEXT_H
#define NOGRAD_CORE_TEXT_H

/* Replaces, in place, every control byte (but '\n' when keep_newlines is set) and every byte that is not part
 * of valid UTF-8 (C1 controls, overlong forms and values beyond U+10FFFF included) with '?', so that a string
 * from a hostile file can neither drive the terminal (escape sequences) nor split a line nograd prints, and
 * stays valid UTF-8 (for JSON). The length is unchanged. NULL is left alone. */
void ng__text_sanitize(char *s, int keep_newlines);

#endif
