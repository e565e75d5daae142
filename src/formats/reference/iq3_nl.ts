/** iq3_nl: kvsplit's own 3-bit codebook KV format (14-byte blocks of 32 values, 3.5 bits per value); see codebook.ts. */
import { IQ3_NL, codebookFormat } from "./codebook.js";

export const iq3_nl = codebookFormat(IQ3_NL, 1003);
