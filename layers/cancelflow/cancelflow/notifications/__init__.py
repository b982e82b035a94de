"""KCP's notifications (공통 통보): deposits and cancels made outside cancelflow, told by KCP."""
