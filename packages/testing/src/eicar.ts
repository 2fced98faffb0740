/** The EICAR test string, assembled at run time so that no source file is itself a "virus" to a scanner. */
export const EICAR = Buffer.from(`X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`);
