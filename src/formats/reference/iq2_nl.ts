/** iq2_nl: kvsplit's own 2-bit codebook KV format (10-byte blocks of 32 values, 2.5 bits per value); see codebook.ts. */
import { IQ2_NL, codebookFormat } from "./codebook.js";

export const iq2_nl = codebookFormat(IQ2_NL, 1002);
